/* Pieces of answers shared by the handlers: probabilities, times, a model's stored metrics. */
#include "config.h"

#include "response.h"

#include <stdio.h>
#include <time.h>

json_object *response_probabilities(const cml_model *m, const double *probs) {
    json_object *o = json_object_new_object();
    for (size_t c = 0; c < m->n_labels; c++)
        json_object_object_add(o, m->labels[c], json_object_new_double(probs[c]));
    return o;
}

const char *response_iso_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json_object *response_model_metrics(const cml_model *m, const char *which) {
    if (m->metrics_json == NULL)
        return NULL;
    json_object *all = json_tokener_parse(m->metrics_json), *part = NULL;
    if (all && json_object_object_get_ex(all, which, &part))
        part = json_object_get(part);
    json_object_put(all);
    return part;
}
