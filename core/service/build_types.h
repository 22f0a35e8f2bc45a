/* The model types this build can serve (the ensemble needs XGBoost and FANN). */
#ifndef CML_BUILD_TYPES_H
#define CML_BUILD_TYPES_H

#include <stdbool.h>

#include "model/model.h"

/* True when this build has every member a model of type t needs. */
bool service_type_available(cml_model_type t);

#endif
