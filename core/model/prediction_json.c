#include "config.h"

#include "model/prediction_json.h"

json_object *cml_prediction_questions_json(const cml_model *m, const cml_prediction *p,
                                           const char *text) {
    if (p->n_sentences < 2)
        return NULL;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < p->n_questions; i++) {
        const cml_question_vote *q = &p->questions[i];
        json_object *o = json_object_new_object();
        json_object_object_add(
            o, "text", json_object_new_string_len(text + q->start, (int)(q->end - q->start)));
        json_object_object_add(o, "start",
                               json_object_new_int64((int64_t)cml_utf8_offset(text, q->start)));
        json_object_object_add(o, "end",
                               json_object_new_int64((int64_t)cml_utf8_offset(text, q->end)));
        json_object_object_add(o, "classification", json_object_new_string(m->labels[q->label]));
        json_object_object_add(o, "confidence", json_object_new_double(q->confidence));
        json_object_array_add(a, o);
    }
    return a;
}
