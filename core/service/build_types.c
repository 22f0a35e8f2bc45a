#include "config.h"

#include "build_types.h"

#include "learn/trainer.h"

bool service_type_available(cml_model_type t) {
    const cml_member_ops *ops[CML_MAX_MEMBERS];
    return cml_model_type_members(t, ops, CML_MAX_MEMBERS) > 0;
}
