/* The ensemble/classic comparison: each type's latest figures and which to recommend. */
#include "config.h"

#include <math.h>
#include <string.h>

#include <json-c/json.h>

#include "service.h"

/* Mean single-question latency of a resident model in ms, over a fixed probe set. */
static double probe_latency_ms(service *svc, cml_model_type t) {
    static const char *probes[] = {
        "What do you think will happen next?", "is it red",
        "how many blocks are in your tower",   "Tell me about your picture.",
        "um so why did the ice melt",          "Do you want milk or water?"};
    cml_model *m = cml_registry_acquire(svc->registry, t);
    cml_feature_scratch *s = cml_feature_scratch_new();
    double ms = NAN;
    if (m && s) {
        struct timespec t0, t1;
        cml_prediction p;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int rep = 0; rep < 20; rep++)
            for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
                cml_model_predict(m, s, probes[i], strlen(probes[i]), &p);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
             (20.0 * (double)(sizeof probes / sizeof probes[0]));
    }
    cml_feature_scratch_free(s);
    cml_model_release(m);
    return ms;
}

/* The latest history entry of a type, or the resident model's own figures. */
static service_side side_of(service *svc, cml_model_type t) {
    service_side s = {0};
    cml_history_entry *h = NULL;
    size_t n = 0;
    const char *name = cml_model_type_name(t);
    cml_slot_info info;
    cml_registry_info(svc->registry, t, &info);
    if (cml_state_list_history(svc->state, name, 0, &h, &n) == CML_OK) {
        /* The entry of the version now running, else the newest. */
        size_t pick = n;
        for (size_t i = 0; i < n; i++)
            if (info.loaded && !strcmp(h[i].version, info.version))
                pick = i;
        if (pick == n && n > 0)
            pick = n - 1;
        if (pick < n) {
            json_object *all =
                            h[pick].metrics_json ? json_tokener_parse(h[pick].metrics_json) : NULL,
                        *hold, *v;
            if (all && json_object_object_get_ex(all, "holdout", &hold)) {
                s.present = true;
                if (json_object_object_get_ex(hold, "f1_macro", &v))
                    s.f1 = json_object_get_double(v);
                if (json_object_object_get_ex(hold, "accuracy", &v))
                    s.acc = json_object_get_double(v);
            }
            json_object_put(all);
            s.train_s = h[pick].training_time;
            s.ts = h[pick].timestamp;
            snprintf(s.version, sizeof s.version, "%s", h[pick].version);
        }
    }
    cml_history_free(h, n);
    if (s.present)
        s.latency_ms = probe_latency_ms(svc, t);
    return s;
}

/* The recommendation on the human labels: accuracy first, then macro F1, then held-out F1. */
static void compare_feedback(service_comparison *out) {
    const service_feedback_side *e = &out->fb[CML_MODEL_ENSEMBLE], *c = &out->fb[CML_MODEL_CLASSIC];
    const char *why;
    double dacc = e->accuracy - c->accuracy, df1 = e->f1_macro - c->f1_macro;
    bool ensemble;
    if (fabs(dacc) >= 0.005) {
        ensemble = dacc > 0;
        why = "higher accuracy on the feedback";
    } else if (!isnan(df1) && fabs(df1) >= 0.005) {
        ensemble = df1 > 0;
        why = "equal feedback accuracy and higher macro F1 on it";
    } else {
        ensemble = out->side[CML_MODEL_ENSEMBLE].f1 > out->side[CML_MODEL_CLASSIC].f1;
        why = "equal quality on the feedback and higher held-out macro F1";
    }
    const service_feedback_side *win = ensemble ? e : c, *other = ensemble ? c : e;
    out->recommended = true;
    out->pick = ensemble ? CML_MODEL_ENSEMBLE : CML_MODEL_CLASSIC;
    out->evidence = "feedback";
    snprintf(out->reason, sizeof out->reason,
             "%s: %s (accuracy %.4f [95%% CI %.4f-%.4f] on %zu items vs %.4f [%.4f-%.4f] on %zu, "
             "macro F1 %.4f vs %.4f)",
             cml_model_type_name(out->pick), why, win->accuracy, win->ci_lo, win->ci_hi, win->n,
             other->accuracy, other->ci_lo, other->ci_hi, other->n, win->f1_macro, other->f1_macro);
}

void service_compare(service *svc, service_comparison *out) {
    memset(out, 0, sizeof(*out));
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT; t++) {
        out->side[t] = side_of(svc, t);
        service_feedback_side_of(svc, t, &out->fb[t]);
    }
    const service_side *e = &out->side[CML_MODEL_ENSEMBLE], *c = &out->side[CML_MODEL_CLASSIC];
    size_t need = (size_t)svc->cfg.comparison_min_feedback;
    if (out->fb[CML_MODEL_ENSEMBLE].n >= need && out->fb[CML_MODEL_CLASSIC].n >= need) {
        compare_feedback(out);
        return;
    }
    if (!e->present || !c->present)
        return;
    out->evidence = "held_out";
    /* Quality first; latency decides only between models of equal quality. */
    const char *why;
    double df1 = e->f1 - c->f1, dacc = e->acc - c->acc;
    bool ensemble;
    if (fabs(df1) >= 0.005) {
        ensemble = df1 > 0;
        why = "higher macro F1";
    } else if (fabs(dacc) >= 0.005) {
        ensemble = dacc > 0;
        why = "equal macro F1 and higher accuracy";
    } else {
        ensemble = e->latency_ms < c->latency_ms;
        why = "equal quality and lower latency";
    }
    const service_side *win = ensemble ? e : c, *other = ensemble ? c : e;
    out->recommended = true;
    out->pick = ensemble ? CML_MODEL_ENSEMBLE : CML_MODEL_CLASSIC;
    snprintf(out->reason, sizeof out->reason,
             "%s: %s on the held-out split (macro F1 %.4f vs %.4f, accuracy %.4f vs %.4f, "
             "latency %.3f vs %.3f ms; feedback items %zu and %zu, %zu each needed)",
             cml_model_type_name(out->pick), why, win->f1, other->f1, win->acc, other->acc,
             win->latency_ms, other->latency_ms,
             out->fb[ensemble ? CML_MODEL_ENSEMBLE : CML_MODEL_CLASSIC].n,
             out->fb[ensemble ? CML_MODEL_CLASSIC : CML_MODEL_ENSEMBLE].n, need);
}
