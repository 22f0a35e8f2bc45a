/* Evaluation: a stored version loaded on demand, scored on uploaded or held-out data. */
#include "config.h"

#include <string.h>

#include "learn/trainer.h"
#include "model/local_store.h"
#include "model/model_file.h"
#include "service.h"

cml_err service_load_version(service *svc, cml_model_type type, const char *version,
                             cml_model **out, cml_diag *diag) {
    char path[4096];
    cml_diag d = {{0}};
    *out = NULL;
    if (!cml_version_valid(version))
        return cml_diag_set(diag, CML_ERR_NOT_FOUND, "not a version: %s", version);
    cml_local_store_path(svc->cfg.model_cache_dir, cml_model_type_name(type), version, path,
                         sizeof path);
    cml_err err = cml_model_load(path, out, &d);
    if (err == CML_ERR_NOT_FOUND)
        return cml_diag_set(diag, err, "no %s model has version %s", cml_model_type_name(type),
                            version);
    if (err != CML_OK)
        return cml_diag_set(diag, CML_ERR_FORMAT, "%s", d.msg);
    return CML_OK;
}

cml_err service_evaluate(const cml_model *m, const char *csv, cml_metrics *out, cml_diag *diag) {
    cml_dataset *ds = NULL;
    cml_diag d = {{0}};
    const cml_dataset *data = m->holdout;
    cml_err err = CML_OK;
    if (csv) {
        cml_csv_options opts = {.min_labels = 1, .min_rows = 1};
        if (cml_csv_parse(csv, strlen(csv), &opts, &ds, &d) != CML_OK)
            return cml_diag_set(diag, CML_ERR_CSV, "%s", d.msg);
        data = ds;
    }
    if (data == NULL)
        err = cml_diag_set(diag, CML_ERR_NOT_FOUND, "the model has no held-out split");
    else if (cml_model_evaluate(m, data, out, &d) != CML_OK)
        err = cml_diag_set(diag, CML_ERR_DATA, "%s", d.msg);
    cml_dataset_free(ds);
    return err;
}
