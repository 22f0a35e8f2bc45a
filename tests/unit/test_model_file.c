/* Model files: round trips, atomic writes, and refusal of every kind of damage. */
#include "config.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"
#include "learn/trainer.h"
#include "unit.h"

static cml_model *small_model(void) {
    static cml_model *cached;
    if (cached == NULL) {
        cml_dataset *ds = unit_corpus(400);
        cml_train_options o;
        cml_diag d;
        cml_train_options_init(&o, CML_MODEL_CLASSIC);
        o.cv_folds = 0;
        ck_assert_int_eq(cml_train(ds, &o, &cached, NULL, &d), CML_OK);
        cml_dataset_free(ds);
    }
    return cml_model_retain(cached);
}

static void predict_all(const cml_model *m, double *out) {
    static const char *texts[] = {"What do you think will happen?", "is it red",
                                  "how many are there", "Tell me about your picture.", "huh?"};
    cml_feature_scratch *s = cml_feature_scratch_new();
    for (int i = 0; i < 5; i++) {
        cml_prediction p;
        ck_assert_int_eq(cml_model_predict(m, s, texts[i], strlen(texts[i]), &p), CML_OK);
        out[2 * i] = p.probs[0];
        out[2 * i + 1] = p.probs[1];
    }
    cml_feature_scratch_free(s);
}

START_TEST(test_round_trip_identical_predictions) {
    cml_model *m = small_model(), *back;
    uint8_t *buf;
    size_t len;
    cml_diag d;
    double a[10], b[10];
    ck_assert_int_eq(cml_model_serialize(m, &buf, &len), CML_OK);
    ck_assert_int_eq(cml_model_deserialize(buf, len, &back, &d), CML_OK);
    predict_all(m, a);
    predict_all(back, b);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_str_eq(back->version, m->version);
    ck_assert_str_eq(back->data_sha256, m->data_sha256);
    ck_assert_str_eq(back->file_sha256, m->file_sha256);
    ck_assert_uint_eq(back->n_labels, 2);
    ck_assert_ptr_nonnull(back->holdout);
    ck_assert_uint_eq(back->holdout->n, m->n_test);
    ck_assert_ptr_nonnull(strstr(back->metrics_json, "\"holdout\""));
    cml_free(buf);
    cml_model_release(back);
    cml_model_release(m);
}
END_TEST

START_TEST(test_flip_any_byte_refused) {
    cml_model *m = small_model(), *back;
    uint8_t *buf;
    size_t len;
    cml_diag d;
    ck_assert_int_eq(cml_model_serialize(m, &buf, &len), CML_OK);
    /* Every byte of the header and trailer, and 400 positions spread over the rest. */
    for (size_t k = 0; k < 16 + 32 + 400; k++) {
        size_t pos = k < 16 ? k : k < 48 ? len - 32 + (k - 16) : 16 + (k - 48) * (len - 48) / 400;
        buf[pos] ^= 0x5a;
        back = NULL;
        cml_err err = cml_model_deserialize(buf, len, &back, &d);
        ck_assert_msg(err != CML_OK, "flipped byte %zu of %zu was accepted", pos, len);
        ck_assert_ptr_null(back);
        buf[pos] ^= 0x5a;
    }
    ck_assert_int_eq(cml_model_deserialize(buf, len, &back, &d), CML_OK);
    cml_model_release(back);
    cml_free(buf);
    cml_model_release(m);
}
END_TEST

START_TEST(test_truncated_foreign_future) {
    cml_model *m = small_model(), *back;
    uint8_t *buf;
    size_t len;
    cml_diag d;
    ck_assert_int_eq(cml_model_serialize(m, &buf, &len), CML_OK);
    size_t cuts[] = {0, 4, 8, 15, 16, 100, len / 2, len - 33, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        ck_assert_int_ne(cml_model_deserialize(buf, cuts[i], &back, &d), CML_OK);
    const char *csv = "text,label\nIs it?,CEQ\n";
    ck_assert_int_eq(cml_model_deserialize((const uint8_t *)csv, strlen(csv), &back, &d),
                     CML_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(d.msg, "not a cultivate-ml model"));
    buf[8] = CML_MODEL_FORMAT_VERSION + 1; /* version is checked before the checksum */
    ck_assert_int_eq(cml_model_deserialize(buf, len, &back, &d), CML_ERR_VERSION);
    ck_assert_ptr_nonnull(strstr(d.msg, "newer"));
    cml_free(buf);
    cml_model_release(m);
}
END_TEST

/* Rebuilds a file from its sections, letting edit() change or drop them, with a fresh checksum. */
typedef bool (*section_edit)(uint32_t tag, uint8_t **p, size_t *n);

static uint8_t *rebuild(const uint8_t *in, size_t len, section_edit edit, size_t *out_len) {
    cml_buf b = {0};
    cml_reader r = cml_reader_init(in + 16, len - 16 - 32);
    uint32_t count = 0, n_sections = (uint32_t)in[12] | (uint32_t)in[13] << 8;
    cml_buf body = {0};
    for (uint32_t s = 0; s < n_sections; s++) {
        uint32_t tag = cml_read_u32(&r);
        size_t n = (size_t)cml_read_u64(&r);
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, cml_read_bytes(&r, n), n);
        if (edit(tag, &p, &n)) {
            cml_buf_put_u32(&body, tag);
            cml_buf_put_u64(&body, n);
            cml_buf_put(&body, p, n);
            count++;
        }
        free(p);
    }
    cml_buf_put(&b, in, 12);
    cml_buf_put_u32(&b, count);
    cml_buf_put(&b, body.data, body.len);
    unsigned char md[32];
    unsigned int md_len;
    EVP_Digest(b.data, b.len, md, &md_len, EVP_sha256(), NULL);
    cml_buf_put(&b, md, 32);
    cml_buf_release(&body);
    return cml_buf_take(&b, out_len);
}

static bool drop_member(uint32_t tag, uint8_t **p, size_t *n) {
    (void)p;
    (void)n;
    return tag != 0x424d454d; /* "MEMB" */
}

static bool unknown_member_kind(uint32_t tag, uint8_t **p, size_t *n) {
    if (tag != 0x4154454d) /* "META" */
        return true;
    char *meta = strndup((char *)*p, *n);
    char *k = strstr(meta, "\"kind\":1");
    ck_assert_ptr_nonnull(k);
    k[7] = '9'; /* a member kind this build does not have */
    memcpy(*p, meta, *n);
    free(meta);
    return true;
}

static bool corrupt_member(uint32_t tag, uint8_t **p, size_t *n) {
    (void)p;
    if (tag == 0x424d454d)
        *n = *n / 2; /* a payload cut short, with a valid file checksum */
    return true;
}

START_TEST(test_damaged_sections_refused) {
    cml_model *m = small_model(), *back;
    uint8_t *buf, *bad;
    size_t len, bad_len;
    cml_diag d;
    ck_assert_int_eq(cml_model_serialize(m, &buf, &len), CML_OK);

    bad = rebuild(buf, len, drop_member, &bad_len);
    ck_assert_int_eq(cml_model_deserialize(bad, bad_len, &back, &d), CML_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(d.msg, "lacks member logistic_regression"));
    cml_free(bad);

    bad = rebuild(buf, len, unknown_member_kind, &bad_len);
    ck_assert_int_eq(cml_model_deserialize(bad, bad_len, &back, &d), CML_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(d.msg, "this build cannot load"));
    cml_free(bad);

    bad = rebuild(buf, len, corrupt_member, &bad_len);
    ck_assert_int_eq(cml_model_deserialize(bad, bad_len, &back, &d), CML_ERR_FORMAT);
    cml_free(bad);
    cml_free(buf);
    cml_model_release(m);
}
END_TEST

START_TEST(test_atomic_save_and_load) {
    cml_model *m = small_model(), *back;
    cml_diag d;
    char dir[] = "/tmp/cml-test-XXXXXX", path[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/classic.model", dir);
    ck_assert_int_eq(cml_model_save(m, path, &d), CML_OK);
    /* Only the model itself is left in the directory: no temporary file. */
    DIR *dd = opendir(dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(dd)) != NULL)
        if (e->d_name[0] != '.' || strstr(e->d_name, ".tmp.") != NULL) {
            ck_assert_str_eq(e->d_name, "classic.model");
            entries++;
        }
    closedir(dd);
    ck_assert_int_eq(entries, 1);
    ck_assert_int_eq(cml_model_load(path, &back, &d), CML_OK);
    ck_assert_str_eq(back->file_sha256, m->file_sha256);
    cml_model_release(back);
    /* Unwritable target: an error, and no temporary left behind. */
    ck_assert_int_eq(cml_model_save(m, "/nonexistent-dir/x.model", &d), CML_ERR_IO);
    ck_assert_int_eq(cml_model_load("/nonexistent-dir/x.model", &back, &d), CML_ERR_NOT_FOUND);
    ck_assert_int_eq(cml_model_load(dir, &back, &d), CML_ERR_IO);
    unlink(path);
    rmdir(dir);
    cml_model_release(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model_file");
    TCase *tc = tcase_create("model_file");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_identical_predictions);
    tcase_add_test(tc, test_flip_any_byte_refused);
    tcase_add_test(tc, test_truncated_foreign_future);
    tcase_add_test(tc, test_damaged_sections_refused);
    tcase_add_test(tc, test_atomic_save_and_load);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
