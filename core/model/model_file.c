#include "config.h"

#include "model/model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"
#include "base/sha256.h"
#include "base/file_io.h"

#define MAGIC "CMLMODEL"
#define TAG(a, b, c, d)                                                                            \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_META TAG('M', 'E', 'T', 'A')
#define TAG_FEAT TAG('F', 'E', 'A', 'T')
#define TAG_MEMB TAG('M', 'E', 'M', 'B')
#define TAG_HOLD TAG('H', 'O', 'L', 'D')
#define TAG_DETC TAG('D', 'E', 'T', 'C')
#define HEADER_BYTES 16
#define DIGEST_BYTES 32

static void put_section(cml_buf *b, uint32_t tag, const void *p, size_t n) {
    cml_buf_put_u32(b, tag);
    cml_buf_put_u64(b, n);
    cml_buf_put(b, p, n);
}

/* {"inputs": [names], "coef": [...], "bias": b}; names may be NULL. */
static json_object *logreg_json(const cml_dense_logreg *lr, const char *const *names) {
    json_object *o = json_object_new_object(), *coef = json_object_new_array();
    for (uint32_t k = 0; k < lr->n_inputs; k++)
        json_object_array_add(coef, json_object_new_double(lr->coef[k]));
    if (names != NULL) {
        json_object *in = json_object_new_array();
        for (uint32_t k = 0; k < lr->n_inputs; k++)
            json_object_array_add(in, json_object_new_string(names[k]));
        json_object_object_add(o, "inputs", in);
    }
    json_object_object_add(o, "coef", coef);
    json_object_object_add(o, "bias", json_object_new_double(lr->bias));
    return o;
}

static json_object *meta_json(const cml_model *m) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "created_at", json_object_new_int64(m->created_at));
    json_object_object_add(o, "data_sha256", json_object_new_string(m->data_sha256));
    json_object_object_add(o, "n_train", json_object_new_int64(m->n_train));
    json_object_object_add(o, "n_test", json_object_new_int64(m->n_test));
    json_object_object_add(o, "training_time_s", json_object_new_double(m->training_time_s));
    json_object *labels = json_object_new_array();
    for (size_t i = 0; i < m->n_labels; i++)
        json_object_array_add(labels, json_object_new_string(m->labels[i]));
    json_object_object_add(o, "labels", labels);
    json_object *members = json_object_new_array();
    for (size_t i = 0; i < m->n_members; i++) {
        json_object *mem = json_object_new_object();
        json_object_object_add(mem, "name", json_object_new_string(m->members[i].ops->name));
        json_object_object_add(mem, "kind", json_object_new_int(m->members[i].ops->kind));
        json_object_object_add(mem, "weight", json_object_new_double(m->members[i].weight));
        json_object_array_add(members, mem);
    }
    json_object_object_add(o, "members", members);
    json_object_object_add(o, "voting", json_object_new_string(cml_model_voting(m)));
    json_object_object_add(o, "question_detector", json_object_new_boolean(m->detector != NULL));
    json_object_object_add(o, "combination",
                           json_object_new_string(cml_combination_name(m->combination)));
    if (m->combination == CML_COMBINE_STACKING)
        json_object_object_add(o, "stacker", logreg_json(&m->stacker, NULL));
    if (m->utterance_fitted)
        json_object_object_add(o, "utterance",
                               logreg_json(&m->utterance, cml_utterance_input_names));
    const cml_feature_config *fc = cml_featurizer_config(m->features);
    json_object *feat = json_object_new_object();
    json_object_object_add(feat, "hand_features", json_object_new_int(CML_HAND_FEATURES));
    json_object_object_add(feat, "columns",
                           json_object_new_int64((int64_t)cml_featurizer_n_cols(m->features)));
    json_object_object_add(feat, "char_ngrams_min", json_object_new_int((int)fc->char_min));
    json_object_object_add(feat, "char_ngrams_max", json_object_new_int((int)fc->char_max));
    json_object_object_add(feat, "word_ngrams", json_object_new_string("1-2 (focus sentence 1-3)"));
    json_object_object_add(feat, "stemmer", json_object_new_string("snowball english"));
    json_object_object_add(o, "features", feat);
    json_object *metrics = m->metrics_json ? json_tokener_parse(m->metrics_json) : NULL;
    json_object_object_add(o, "metrics", metrics ? metrics : json_object_new_object());
    return o;
}

cml_err cml_model_serialize(cml_model *m, uint8_t **out, size_t *out_len) {
    cml_err err = CML_OK;
    cml_buf b = {0}, member = {0};
    uint8_t *feat = NULL;
    size_t feat_len = 0;
    char *hold = NULL;
    size_t hold_len = 0;
    json_object *meta = meta_json(m);
    if (meta == NULL)
        return CML_ERR_NOMEM;
    const char *meta_text = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN);

    if ((err = cml_featurizer_serialize(m->features, &feat, &feat_len)) != CML_OK)
        goto done;
    if (m->holdout != NULL) {
        FILE *mem = open_memstream(&hold, &hold_len);
        if (mem == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        err = cml_csv_write(mem, m->holdout);
        if (fclose(mem) != 0 && err == CML_OK)
            err = CML_ERR_NOMEM;
        if (err != CML_OK)
            goto done;
    }
    cml_buf_put(&b, MAGIC, 8);
    cml_buf_put_u32(&b, CML_MODEL_FORMAT_VERSION);
    cml_buf_put_u32(&b, (uint32_t)(2 + m->n_members + (hold ? 1 : 0) + (m->detector ? 1 : 0)));
    put_section(&b, TAG_META, meta_text, strlen(meta_text));
    put_section(&b, TAG_FEAT, feat, feat_len);
    for (size_t i = 0; i < m->n_members; i++) {
        member.len = 0;
        cml_buf_put_u32(&member, (uint32_t)m->members[i].ops->kind);
        if ((err = m->members[i].ops->serialize(m->members[i].state, &member)) != CML_OK)
            goto done;
        put_section(&b, TAG_MEMB, member.data, member.len);
    }
    if (hold)
        put_section(&b, TAG_HOLD, hold, hold_len);
    if (m->detector != NULL) {
        member.len = 0;
        if ((err = cml_detector_serialize(m->detector, &member)) != CML_OK)
            goto done;
        put_section(&b, TAG_DETC, member.data, member.len);
    }
    if ((err = cml_buf_status(&b)) != CML_OK)
        goto done;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(b.data, b.len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != DIGEST_BYTES) {
        err = CML_ERR_INTERNAL;
        goto done;
    }
    cml_buf_put(&b, md, DIGEST_BYTES);
    if ((err = cml_buf_status(&b)) != CML_OK)
        goto done;
    cml_sha256_hex(b.data, b.len, m->file_sha256);
    m->file_bytes = b.len;
    *out = cml_buf_take(&b, out_len);
done:
    json_object_put(meta);
    cml_free(feat);
    free(hold); /* open_memstream's buffer comes from malloc */
    cml_buf_release(&b);
    cml_buf_release(&member);
    return err;
}

static const char *json_str(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool json_num(json_object *o, const char *key, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return false;
    *out = json_object_get_double(v);
    return isfinite(*out);
}

/* A logistic regression of exactly n inputs from logreg_json's shape; false when malformed. */
static bool logreg_parse(json_object *o, size_t n, cml_dense_logreg *out) {
    json_object *coef;
    double bias;
    if (!json_object_is_type(o, json_type_object) || !json_num(o, "bias", &bias) ||
        !json_object_object_get_ex(o, "coef", &coef) ||
        !json_object_is_type(coef, json_type_array) || json_object_array_length(coef) != n ||
        n > CML_DENSE_LOGREG_MAX_INPUTS)
        return false;
    out->n_inputs = (uint32_t)n;
    out->bias = bias;
    for (size_t k = 0; k < n; k++) {
        json_object *v = json_object_array_get_idx(coef, k);
        if (!(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
            return false;
        out->coef[k] = json_object_get_double(v);
        if (!isfinite(out->coef[k]))
            return false;
    }
    return true;
}

/* The combination and utterance combiner of META (absent in format 1: weighted voting). */
static cml_err parse_combiners(cml_model *m, json_object *o, cml_diag *diag) {
    const char *comb = json_str(o, "combination");
    json_object *v;
    m->combination = CML_COMBINE_VOTING;
    if (comb != NULL && strcmp(comb, "stacking") == 0) {
        if (m->n_labels != 2 || !json_object_object_get_ex(o, "stacker", &v) ||
            !logreg_parse(v, m->n_members, &m->stacker))
            return cml_diag_set(diag, CML_ERR_FORMAT, "model stacker is malformed");
        m->combination = CML_COMBINE_STACKING;
    } else if (comb != NULL && strcmp(comb, "weighted_voting") != 0) {
        return cml_diag_set(diag, CML_ERR_FORMAT, "model combination %s is unknown", comb);
    }
    if (json_object_object_get_ex(o, "utterance", &v)) {
        if (m->n_labels != 2 || !logreg_parse(v, CML_UTT__MAX, &m->utterance))
            return cml_diag_set(diag, CML_ERR_FORMAT, "model utterance combiner is malformed");
        m->utterance_fitted = true;
    }
    return CML_OK;
}

/* Fills the model's facts from META; members' ops are looked up (not loaded) here. */
static cml_err parse_meta(cml_model *m, const char *text, size_t len, uint32_t *kinds,
                          cml_diag *diag) {
    cml_err err = CML_OK;
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    json_object *labels, *members, *metrics;
    double d;
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "model metadata is not a JSON object");
        goto done;
    }
    const char *type = json_str(o, "type"), *version = json_str(o, "version"),
               *data = json_str(o, "data_sha256");
    if (type == NULL || cml_model_type_parse(type, &m->type) != CML_OK || version == NULL ||
        strlen(version) >= sizeof(m->version) || data == NULL ||
        strlen(data) >= sizeof(m->data_sha256) ||
        !json_object_object_get_ex(o, "labels", &labels) ||
        !json_object_is_type(labels, json_type_array) ||
        !json_object_object_get_ex(o, "members", &members) ||
        !json_object_is_type(members, json_type_array)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "model metadata lacks type, version, labels or members");
        goto done;
    }
    snprintf(m->version, sizeof m->version, "%s", version);
    snprintf(m->data_sha256, sizeof m->data_sha256, "%s", data);
    /* Numbers out of their type's range are left at zero, never cast (undefined). */
    if (json_num(o, "created_at", &d) && fabs(d) < 9.2e18)
        m->created_at = (int64_t)d;
    if (json_num(o, "n_train", &d) && d >= 0 && d <= UINT32_MAX)
        m->n_train = (uint32_t)d;
    if (json_num(o, "n_test", &d) && d >= 0 && d <= UINT32_MAX)
        m->n_test = (uint32_t)d;
    if (json_num(o, "training_time_s", &d))
        m->training_time_s = d;
    size_t nl = json_object_array_length(labels);
    if (nl < 2 || nl > CML_MAX_LABELS) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "model has %zu labels (2 to %d supported)", nl,
                           CML_MAX_LABELS);
        goto done;
    }
    for (size_t i = 0; i < nl; i++) {
        json_object *l = json_object_array_get_idx(labels, i);
        if (!json_object_is_type(l, json_type_string)) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "model label %zu is not a string", i);
            goto done;
        }
        if ((m->labels[i] = cml_strdup(json_object_get_string(l))) == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        m->n_labels++;
    }
    size_t nm = json_object_array_length(members);
    if (nm < 1 || nm > CML_MAX_MEMBERS) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "model has %zu members", nm);
        goto done;
    }
    for (size_t i = 0; i < nm; i++) {
        json_object *mem = json_object_array_get_idx(members, i);
        const char *name =
            json_object_is_type(mem, json_type_object) ? json_str(mem, "name") : NULL;
        double kind, weight;
        if (name == NULL || !json_num(mem, "kind", &kind) || !json_num(mem, "weight", &weight) ||
            weight < 0 || weight > 1 || kind < 0 || kind > 1e6) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "model member %zu is malformed", i);
            goto done;
        }
        const cml_member_ops *ops = cml_member_ops_by_kind((cml_member_kind)kind);
        if (ops == NULL) {
            err = cml_diag_set(diag, CML_ERR_UNSUPPORTED,
                               "this build cannot load the %s member (built without its library)",
                               name);
            goto done;
        }
        m->members[i].ops = ops;
        m->members[i].weight = weight;
        kinds[i] = (uint32_t)kind;
        m->n_members++;
    }
    if ((err = parse_combiners(m, o, diag)) != CML_OK)
        goto done;
    if (json_object_object_get_ex(o, "metrics", &metrics)) {
        const char *t = json_object_to_json_string_ext(metrics, JSON_C_TO_STRING_PLAIN);
        if ((m->metrics_json = cml_strdup(t)) == NULL)
            err = CML_ERR_NOMEM;
    }
done:
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return err;
}

cml_err cml_model_deserialize(const uint8_t *buf, size_t len, cml_model **out, cml_diag *diag) {
    cml_err err = CML_OK;
    cml_model *m = NULL;
    uint32_t kinds[CML_MAX_MEMBERS] = {0};
    size_t members_loaded = 0;
    bool have_meta = false;

    *out = NULL;
    if (len < 8 || memcmp(buf, MAGIC, 8) != 0)
        return cml_diag_set(diag, CML_ERR_FORMAT, "not a cultivate-ml model file (bad magic)");
    if (len < HEADER_BYTES + DIGEST_BYTES)
        return cml_diag_set(diag, CML_ERR_FORMAT, "model file is truncated (%zu bytes)", len);
    cml_reader r = cml_reader_init(buf + 8, len - 8);
    uint32_t version = cml_read_u32(&r);
    if (version > CML_MODEL_FORMAT_VERSION)
        return cml_diag_set(diag, CML_ERR_VERSION,
                            "model file format %u is newer than this program supports (%d)",
                            version, CML_MODEL_FORMAT_VERSION);
    if (version < CML_MODEL_FORMAT_MIN_VERSION)
        return cml_diag_set(diag, CML_ERR_FORMAT, "model file format %u is unknown", version);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(buf, len - DIGEST_BYTES, md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != DIGEST_BYTES || CRYPTO_memcmp(md, buf + len - DIGEST_BYTES, DIGEST_BYTES) != 0)
        return cml_diag_set(diag, CML_ERR_CHECKSUM,
                            "model file is corrupt or truncated: its SHA-256 does not match");

    m = cml_model_new(CML_MODEL_CLASSIC);
    if (m == NULL)
        return CML_ERR_NOMEM;
    uint32_t n_sections = cml_read_u32(&r);
    r.left -= DIGEST_BYTES; /* the digest is not a section */
    for (uint32_t s = 0; s < n_sections; s++) {
        uint32_t tag = cml_read_u32(&r);
        uint64_t slen = cml_read_u64(&r);
        const uint8_t *p = r.failed || slen > r.left ? NULL : cml_read_bytes(&r, (size_t)slen);
        if (p == NULL) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "model file section %u is truncated", s);
            goto done;
        }
        if (tag == TAG_META && !have_meta) {
            if ((err = parse_meta(m, (const char *)p, (size_t)slen, kinds, diag)) != CML_OK)
                goto done;
            have_meta = true;
        } else if (tag == TAG_FEAT && have_meta && m->features == NULL) {
            if ((err = cml_featurizer_deserialize(p, (size_t)slen, &m->features, diag)) != CML_OK)
                goto done;
        } else if (tag == TAG_MEMB && m->features != NULL && members_loaded < m->n_members) {
            cml_reader mr = cml_reader_init(p, (size_t)slen);
            uint32_t kind = cml_read_u32(&mr);
            cml_model_member *mm = &m->members[members_loaded];
            if (mr.failed || kind != kinds[members_loaded]) {
                err =
                    cml_diag_set(diag, CML_ERR_FORMAT, "member %zu (%s) is missing or out of order",
                                 members_loaded, mm->ops->name);
                goto done;
            }
            err = mm->ops->deserialize(mr.p, mr.left, m->n_labels,
                                       cml_featurizer_n_cols(m->features), &mm->state, diag);
            if (err != CML_OK)
                goto done;
            members_loaded++;
        } else if (tag == TAG_DETC && m->detector == NULL) {
            if ((err = cml_detector_deserialize(p, (size_t)slen, &m->detector, diag)) != CML_OK)
                goto done;
        } else if (tag == TAG_HOLD && m->holdout == NULL) {
            cml_csv_options o = {.min_labels = 1, .min_rows = 1};
            cml_diag ignored;
            if (cml_csv_parse((const char *)p, (size_t)slen, &o, &m->holdout, &ignored) != CML_OK) {
                err = cml_diag_set(diag, CML_ERR_FORMAT, "held-out data section is corrupt");
                goto done;
            }
        } else {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "unexpected section in model file");
            goto done;
        }
    }
    if (r.failed || r.left != 0 || !have_meta || m->features == NULL) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "model file lacks its metadata or features");
        goto done;
    }
    if (members_loaded != m->n_members) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "model file lacks member %s",
                           m->members[members_loaded].ops->name);
        goto done;
    }
    /* Members not loaded must not be freed with a NULL state twice: all are loaded here. */
    cml_sha256_hex(buf, len, m->file_sha256);
    m->file_bytes = len;
    *out = m;
    m = NULL;
done:
    if (m != NULL) {
        /* Only loaded members own a state. */
        for (size_t i = members_loaded; i < m->n_members; i++)
            m->members[i].ops = NULL;
        cml_model_release(m);
    }
    return err;
}

cml_err cml_model_save(cml_model *m, const char *path, cml_diag *diag) {
    uint8_t *buf = NULL;
    size_t len = 0;
    cml_err err = cml_model_serialize(m, &buf, &len);
    if (err == CML_OK)
        err = cml_write_file_atomic(path, buf, len, diag);
    cml_free(buf);
    return err;
}

cml_err cml_model_load(const char *path, cml_model **out, cml_diag *diag) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    cml_err err = cml_read_file(path, CML_MODEL_MAX_FILE_BYTES, &buf, &len, diag);
    if (err == CML_OK)
        err = cml_model_deserialize(buf, len, out, diag);
    cml_free(buf);
    return err;
}
