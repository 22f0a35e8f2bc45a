/*
 * What the instance knows of its models, kept in the shared state: the
 * versions and their metrics, the training history, and publishing a newly
 * trained version (record, history, latest pointer, selection, retention).
 */
#ifndef CML_MODEL_CATALOG_H
#define CML_MODEL_CATALOG_H

#include <stdbool.h>

#include "base/cml_error.h"
#include "model/model.h"
#include "state/shared_state.h"

/* Records (or updates) the version of m in the shared state. */
cml_err cml_catalog_record(cml_state *st, const cml_model *m, bool local, bool blob);

/* Appends m's training to the history (task_id may be NULL). */
cml_err cml_catalog_add_history(cml_state *st, const cml_model *m, const char *task_id);

/*
 * Publishes m, already saved in cache_dir: records it and its history,
 * points TYPE_latest at it, makes it the active version of its type (any pin
 * of that type is cleared) and keeps only the newest `retain` versions of
 * the type, never removing the selected or pinned one.
 */
cml_err cml_catalog_publish(cml_state *st, const char *cache_dir, const cml_model *m,
                            const char *task_id, size_t retain, cml_diag *diag);

/* Removes versions of a type beyond the newest `retain`, sparing the pinned one. */
cml_err cml_catalog_prune(cml_state *st, const char *cache_dir, cml_model_type type, size_t retain);

#endif
