/* The layout of the container: blob names of versions and pointers, and active.json (parse and
 * format). */
#include "config.h"

#include "azure/blob_store_internal.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include "base/cml_alloc.h"

/* ---- names ------------------------------------------------------------------------------ */

cml_err cml_blob_store_version_name(cml_model_type type, const char *version, char *buf,
                                    size_t cap) {
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    if (!bs_type_known(type) || !cml_version_valid(version) || buf == NULL)
        return CML_ERR_INVALID;
    int n = snprintf(buf, cap, "%s/%s.model", cml_model_type_name(type), version);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return CML_ERR_NOMEM;
    }
    return CML_OK;
}

bool cml_blob_store_parse_version_name(const char *name, cml_model_type *type,
                                       char version[CML_VERSION_MAX]) {
    if (name == NULL)
        return false;
    const char *slash = strchr(name, '/');
    if (slash == NULL)
        return false;
    char tname[16];
    size_t tl = (size_t)(slash - name);
    if (tl == 0 || tl >= sizeof tname)
        return false;
    memcpy(tname, name, tl);
    tname[tl] = '\0';
    cml_model_type t;
    if (cml_model_type_parse(tname, &t) != CML_OK)
        return false;
    const char *v = slash + 1;
    size_t vl = strlen(v);
    if (vl <= 6 || strcmp(v + vl - 6, ".model") != 0 || vl - 6 >= CML_VERSION_MAX)
        return false;
    char ver[CML_VERSION_MAX];
    memcpy(ver, v, vl - 6);
    ver[vl - 6] = '\0';
    if (!cml_version_valid(ver) || strcmp(ver, "latest") == 0)
        return false;
    if (type != NULL)
        *type = t;
    if (version != NULL)
        memcpy(version, ver, CML_VERSION_MAX);
    return true;
}

bool cml_blob_store_pointer_name_ok(const char *name) {
    if (!bs_blob_name_ok(name))
        return false;
    if (strcmp(name, CML_BLOB_STORE_ACTIVE) == 0 || strcmp(name, CML_BLOB_STORE_TRAINING_DATA) == 0)
        return false;
    if (strncmp(name, "classic/", 8) == 0 || strncmp(name, "ensemble/", 9) == 0)
        return false;
    return true;
}

/* ---- active.json ------------------------------------------------------------------------ */

/* The value of n decimal digits (already checked to be digits). */
static int digits(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* ISO 8601 UTC ("2026-11-26T05:30:12Z", optional fraction, Z / +00:00 / nothing). */
static bool parse_iso_utc(const char *s, int64_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strlen(s) < 19 || !isdigit((unsigned char)s[0]) || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return false;
    for (size_t i = 0; i < 19; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && !isdigit((unsigned char)s[i]))
            return false;
    tm.tm_year = digits(s, 4) - 1900;
    tm.tm_mon = digits(s + 5, 2) - 1;
    tm.tm_mday = digits(s + 8, 2);
    tm.tm_hour = digits(s + 11, 2);
    tm.tm_min = digits(s + 14, 2);
    tm.tm_sec = digits(s + 17, 2);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (strncmp(p, "+00:00", 6) == 0)
        p += 6;
    if (*p != '\0')
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return false;
    *out = (int64_t)t;
    return true;
}

/* A version field: absent or null -> "", else a string "" or a valid version. */
static bool parse_version_field(json_object *root, const char *key, char out[40]) {
    json_object *v;
    out[0] = '\0';
    if (!json_object_object_get_ex(root, key, &v) || v == NULL)
        return true;
    if (!json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    if (s[0] != '\0' && !cml_version_valid(s))
        return false;
    bs_copy_str(out, 40, s);
    return true;
}

cml_err cml_blob_active_parse(const char *text, size_t len, cml_selection *out, cml_diag *diag) {
    cml_err err = CML_OK;
    json_tokener *tok = NULL;
    json_object *root = NULL, *v = NULL;
    memset(out, 0, sizeof(*out));
    if (text == NULL || len == 0) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is empty");
        goto done;
    }
    if (len > CML_BLOB_ACTIVE_MAX_BYTES) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is larger than %zu bytes",
                           CML_BLOB_ACTIVE_MAX_BYTES);
        goto done;
    }
    if (memchr(text, '\0', len) != NULL) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json contains a NUL byte");
        goto done;
    }
    tok = json_tokener_new();
    if (tok == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is not valid JSON: %s",
                           json_tokener_error_desc(json_tokener_get_error(tok)));
        goto done;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
        if (!isspace((unsigned char)text[i])) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json has data after the object");
            goto done;
        }
    if (!json_object_is_type(root, json_type_object)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "active.json is not a JSON object");
        goto done;
    }
    cml_model_type t;
    if (!json_object_object_get_ex(root, "active_type", &v) ||
        !json_object_is_type(v, json_type_string) ||
        cml_model_type_parse(json_object_get_string(v), &t) != CML_OK) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: active_type must be \"classic\" or \"ensemble\"");
        goto done;
    }
    bs_copy_str(out->active_type, sizeof out->active_type, cml_model_type_name(t));
    if (!parse_version_field(root, "classic_version", out->classic_version)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: classic_version must be \"\" or a valid version");
        goto done;
    }
    if (!parse_version_field(root, "ensemble_version", out->ensemble_version)) {
        err = cml_diag_set(diag, CML_ERR_FORMAT,
                           "active.json: ensemble_version must be \"\" or a valid version");
        goto done;
    }
    if (json_object_object_get_ex(root, "updated_at", &v) && v != NULL) {
        int64_t at = -1;
        if (json_object_is_type(v, json_type_int)) {
            errno = 0;
            at = json_object_get_int64(v);
            if (errno != 0)
                at = -1;
        } else if (json_object_is_type(v, json_type_string)) {
            if (!parse_iso_utc(json_object_get_string(v), &at))
                at = -1;
        }
        if (at < 0) {
            err = cml_diag_set(diag, CML_ERR_FORMAT,
                               "active.json: updated_at must be Unix seconds or an ISO 8601 "
                               "UTC time");
            goto done;
        }
        out->updated_at = at;
    }
done:
    if (err != CML_OK)
        memset(out, 0, sizeof(*out));
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return err;
}

static bool selection_valid(const cml_selection *sel, cml_diag *diag) {
    cml_model_type t;
    if (sel == NULL || memchr(sel->active_type, '\0', sizeof sel->active_type) == NULL ||
        cml_model_type_parse(sel->active_type, &t) != CML_OK) {
        cml_diag_set(diag, CML_ERR_INVALID, "selection: active_type must be classic or ensemble");
        return false;
    }
    for (cml_model_type m = CML_MODEL_CLASSIC; m < CML_MODEL__COUNT; m++) {
        const char *v = m == CML_MODEL_CLASSIC ? sel->classic_version : sel->ensemble_version;
        if (memchr(v, '\0', 40) == NULL || (v[0] != '\0' && !cml_version_valid(v))) {
            cml_diag_set(diag, CML_ERR_INVALID, "selection: invalid %s version",
                         cml_model_type_name(m));
            return false;
        }
    }
    if (sel->updated_at < 0) {
        cml_diag_set(diag, CML_ERR_INVALID, "selection: negative updated_at");
        return false;
    }
    return true;
}

cml_err cml_blob_active_format(const cml_selection *sel, char **out, cml_diag *diag) {
    cml_err err = CML_OK;
    json_object *o = NULL;
    *out = NULL;
    if (!selection_valid(sel, diag))
        return CML_ERR_INVALID;
    char when[32];
    time_t t = (time_t)sel->updated_at;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return cml_diag_set(diag, CML_ERR_INVALID, "selection: updated_at out of range");
    o = json_object_new_object();
    if (o == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    json_object_object_add(o, "active_type", json_object_new_string(sel->active_type));
    json_object_object_add(o, "classic_version", json_object_new_string(sel->classic_version));
    json_object_object_add(o, "ensemble_version", json_object_new_string(sel->ensemble_version));
    json_object_object_add(o, "updated_at", json_object_new_string(when));
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    *out = text ? cml_strdup(text) : NULL;
    if (*out == NULL)
        err = CML_ERR_NOMEM;
done:
    json_object_put(o);
    return err;
}
