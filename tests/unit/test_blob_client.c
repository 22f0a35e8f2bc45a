/*
 * The blob client (azure/blob_client.c): List Blobs XML, and the HTTP behaviour
 * (retries, Retry-After, error mapping, atomic downloads, managed identity tokens through the
 * client) against a scripted HTTP server on the loopback interface.
 */
#include "config.h"

#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "azure/azure_auth.h"
#include "azure/blob_client.h"
#include "base/cml_alloc.h"
#include "unit.h"

#define DEV_KEY CML_AZ_DEV_KEY
/* A made-up account key: 64 bytes, base64. */
#define TEST_KEY                                                                                   \
    "c2VjcmV0LWtleS1mb3ItdW5pdC10ZXN0cy1vbmx5LW5vdC1yZWFsLTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YQ=="
#define TEST_SIG "SeCrEtSiGnAtUrE0123456789"

/* A connection of a connection string that must parse. */
static cml_az_conn *parse_ok(const char *s) {
    cml_az_conn *c = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_az_conn_parse(s, &c, &d);
    ck_assert_msg(err == CML_OK, "parse failed: %s", d.msg);
    return c;
}

/* ---- List Blobs XML -------------------------------------------------------------------------- */

static const char list_page1[] =
    "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<EnumerationResults ServiceEndpoint=\"http://127.0.0.1:10000/devstoreaccount1\" "
    "ContainerName=\"ml-models\"><Prefix>m</Prefix><MaxResults>2</MaxResults><Blobs>"
    "<Blob><Name>models/a&amp;b.bin</Name><Properties><Creation-Time>x</Creation-Time>"
    "<Last-Modified>Mon, 02 Nov 2026 10:00:00 GMT</Last-Modified><Etag>\"0x8D1\"</Etag>"
    "<Content-Length>1234</Content-Length><Content-Type>application/octet-stream</Content-Type>"
    "</Properties><Metadata /></Blob>"
    "<Blob><Name Encoded=\"true\">models/%EF%BF%BEodd</Name><Properties>"
    "<Etag>0x8D2</Etag><Content-Length>0</Content-Length></Properties></Blob>"
    "</Blobs><NextMarker>2!48!bWFya2Vy</NextMarker></EnumerationResults>";

START_TEST(test_parse_list) {
    cml_blob_list l = {0};
    char *next = NULL;
    ck_assert_int_eq(cml_blob_parse_list(list_page1, strlen(list_page1), &l, &next), CML_OK);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.items[0].name, "models/a&b.bin");
    ck_assert_str_eq(l.items[0].etag, "\"0x8D1\"");
    ck_assert_str_eq(l.items[0].last_modified, "Mon, 02 Nov 2026 10:00:00 GMT");
    ck_assert_uint_eq(l.items[0].length, 1234);
    ck_assert_str_eq(l.items[1].name, "models/\xEF\xBF\xBEodd");
    ck_assert_str_eq(l.items[1].etag, "\"0x8D2\"");
    ck_assert_str_eq(l.items[1].last_modified, "");
    ck_assert_str_eq(next, "2!48!bWFya2Vy");
    cml_free(next);
    const char page2[] = "<EnumerationResults><Blobs><Blob><Name>z&#x41;&#66;</Name></Blob>"
                         "</Blobs><NextMarker /></EnumerationResults>";
    ck_assert_int_eq(cml_blob_parse_list(page2, strlen(page2), &l, &next), CML_OK);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_str_eq(l.items[2].name, "zAB");
    ck_assert_ptr_null(next);
    const char empty[] = "<EnumerationResults><Blobs /><NextMarker/></EnumerationResults>";
    ck_assert_int_eq(cml_blob_parse_list(empty, strlen(empty), &l, &next), CML_OK);
    ck_assert_uint_eq(l.n, 3);
    const char *bad[] = {"<Error><Code>X</Code></Error>",
                         "<EnumerationResults><Blobs><Blob><Name>x</Blob></Blobs>",
                         "<EnumerationResults><Blobs><Blob><Name>a&bogus;</Name></Blob></Blobs>"
                         "</EnumerationResults>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_ne(cml_blob_parse_list(bad[i], strlen(bad[i]), &l, &next), CML_OK);
    cml_blob_list_release(&l);
    ck_assert_uint_eq(l.n, 0);
    cml_blob_list_release(NULL);
}
END_TEST

/* ---- a scripted HTTP server on 127.0.0.1 ------------------------------------------------------
 */

#define MAX_SCRIPT 16

typedef struct mock_reply {
    const char *raw;  /* the whole response (status line, headers, body) */
    size_t cut_after; /* when non-zero, send only this many bytes, then close */
} mock_reply;

typedef struct mock {
    int listen_fd;
    int port;
    pthread_t thread;
    mock_reply replies[MAX_SCRIPT];
    int n_replies;
    char *requests[MAX_SCRIPT]; /* head of each request received (malloc'd) */
    int n_requests;
} mock;

/* Reads one request: headers and a Content-Length body; returns the head (caller frees). */
static char *read_request(int fd) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t body_want = 0, head_len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (head_len == 0) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e == NULL)
                continue;
            head_len = (size_t)(e - buf) + 4;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl != NULL && cl < e)
                body_want = strtoul(cl + 17, NULL, 10);
        }
        if (len >= head_len + body_want) {
            len = 0; /* keep the body out of the record; the head is enough */
            break;
        }
        if (len == cap)
            len = head_len; /* discard body bytes beyond the buffer */
    }
    buf[head_len] = '\0';
    return buf;
}

static void *mock_main(void *arg) {
    mock *m = arg;
    for (int i = 0; i < m->n_replies; i++) {
        struct pollfd p = {.fd = m->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        int fd = accept(m->listen_fd, NULL, NULL);
        if (fd < 0)
            break;
        m->requests[m->n_requests++] = read_request(fd);
        const char *raw = m->replies[i].raw;
        size_t n = m->replies[i].cut_after ? m->replies[i].cut_after : strlen(raw);
        if (send(fd, raw, n, MSG_NOSIGNAL) < 0) {
            /* the client may have gone: nothing to do */
        }
        shutdown(fd, SHUT_WR);
        char sink[256];
        while (recv(fd, sink, sizeof(sink), 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

static void mock_start(mock *m) {
    m->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(m->listen_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(m->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(m->listen_fd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(m->listen_fd, (struct sockaddr *)&a, &al);
    m->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&m->thread, NULL, mock_main, m), 0);
}

/* Waits for the script to finish; the recorded requests stay until mock_free. */
static void mock_stop(mock *m) {
    pthread_join(m->thread, NULL);
    close(m->listen_fd);
}

static void mock_free(mock *m) {
    for (int i = 0; i < m->n_requests; i++)
        free(m->requests[i]);
    m->n_requests = 0;
}

static void mock_add(mock *m, const char *raw, size_t cut_after) {
    m->replies[m->n_replies].raw = raw;
    m->replies[m->n_replies].cut_after = cut_after;
    m->n_replies++;
}

/* Log lines collected from a client. */
typedef struct log_sink {
    char lines[32][512];
    int n;
} log_sink;

static void collect_log(void *ctx, const char *line) {
    log_sink *s = ctx;
    if (s->n < 32)
        snprintf(s->lines[s->n++], 512, "%s", line);
}

static cml_blob_client *mock_client(const mock *m, const char *cred, log_sink *logs,
                                    unsigned retries) {
    char conn[512];
    snprintf(conn, sizeof(conn), "BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;%s", m->port,
             cred);
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.max_retries = retries;
    o.retry_base_ms = 10;
    o.retry_max_ms = 40;
    o.connect_timeout_ms = 2000;
    o.timeout_ms = 5000;
    o.log = collect_log;
    o.log_ctx = logs;
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_blob_client_from_string(conn, &o, &c, &d) == CML_OK, "%s", d.msg);
    return c;
}

#define SAS_CRED "SharedAccessSignature=sv=2021-08-06&sp=rwdlc&sig=" TEST_SIG "%3D"
#define KEY_CRED "AccountName=devstoreaccount1;AccountKey=" DEV_KEY

static const char reply_503[] = "HTTP/1.1 503 Server Busy\r\nx-ms-error-code: ServerBusy\r\n"
                                "Retry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char reply_500[] = "HTTP/1.1 500 Internal\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
static const char reply_head_ok[] =
    "HTTP/1.1 200 OK\r\nETag: \"0x8DABC\"\r\nContent-Length: 5\r\n"
    "Last-Modified: Mon, 02 Nov 2026 10:00:00 GMT\r\nContent-Type: application/octet-stream\r\n"
    "x-ms-meta-sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\r\n"
    "x-ms-meta-Trainer: linear\r\nConnection: close\r\n\r\n";

START_TEST(test_retry_after_and_sas) {
    mock m = {0};
    log_sink logs = {0};
    mock_add(&m, reply_503, 0);
    mock_add(&m, reply_head_ok, 0);
    mock_start(&m);
    cml_blob_client *c = mock_client(&m, SAS_CRED, &logs, 3);
    cml_blob_props p = {0};
    cml_diag d = {{0}};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "models/v 1.bin", &p, &d), CML_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(secs >= 0.95, "Retry-After: 1 not honoured (%.3f s)", secs);
    ck_assert_str_eq(p.etag, "\"0x8DABC\"");
    ck_assert_uint_eq(p.length, 5);
    ck_assert_str_eq(cml_blob_props_meta(&p, "SHA256"),
                     "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    ck_assert_str_eq(cml_blob_props_meta(&p, "trainer"), "linear");
    ck_assert_ptr_null(cml_blob_props_meta(&p, "nothing"));
    cml_blob_props_release(&p);
    mock_stop(&m);
    /* The SAS rides on the URL, the blob name is path-encoded, no Authorization header. */
    ck_assert_int_eq(m.n_requests, 2);
    ck_assert_msg(strncmp(m.requests[1],
                          "HEAD /devstoreaccount1/ml-models/models/v%201.bin?sv=2021-08-06&sp=rwdlc"
                          "&sig=" TEST_SIG "%3D HTTP/1.1",
                          100) == 0,
                  "%s", m.requests[1]);
    ck_assert_ptr_null(strcasestr(m.requests[1], "Authorization:"));
    ck_assert_ptr_nonnull(strcasestr(m.requests[1], "x-ms-version: 2021-08-06"));
    /* One log line for the one failure, naming the kind and never the signature. */
    ck_assert_int_eq(logs.n, 1);
    ck_assert_ptr_nonnull(strstr(logs.lines[0], "HTTP 503 ServerBusy"));
    ck_assert_ptr_nonnull(strstr(logs.lines[0], "retrying"));
    ck_assert_ptr_null(strstr(logs.lines[0], TEST_SIG));
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.requests, 2);
    ck_assert_uint_eq(s.retries, 1);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_THROTTLED], 1);
    ck_assert_uint_eq(s.gave_up, 0);
    cml_blob_client_free(c);
    mock_free(&m);
}
END_TEST

START_TEST(test_retries_exhausted) {
    mock m = {0};
    log_sink logs = {0};
    for (int i = 0; i < 3; i++)
        mock_add(&m, reply_500, 0);
    mock_start(&m);
    cml_blob_client *c = mock_client(&m, KEY_CRED, &logs, 2);
    cml_blob_props p = {0};
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "x", &p, &d), CML_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(d.msg, "HTTP 500"));
    mock_stop(&m);
    ck_assert_int_eq(m.n_requests, 3);
    /* Shared Key: an Authorization header, and never the key itself. */
    ck_assert_ptr_nonnull(strstr(m.requests[0], "Authorization: SharedKey devstoreaccount1:"));
    ck_assert_ptr_null(strstr(m.requests[0], "Eby8"));
    ck_assert_int_eq(logs.n, 3);
    ck_assert_ptr_nonnull(strstr(logs.lines[2], "giving up"));
    ck_assert_ptr_nonnull(strstr(logs.lines[2], "[server]"));
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.retries, 2);
    ck_assert_uint_eq(s.gave_up, 1);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_SERVER], 3);
    cml_blob_client_free(c);
    mock_free(&m);
}
END_TEST

START_TEST(test_error_mapping) {
    static const char r404[] = "HTTP/1.1 404 Not Found\r\nx-ms-error-code: BlobNotFound\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    static const char r412[] =
        "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/xml\r\n"
        "Connection: close\r\n\r\n"
        "<?xml version=\"1.0\"?><Error><Code>ConditionNotMet</Code><Message>x</Message></Error>"
        "           ";
    static const char r409[] = "HTTP/1.1 409 Conflict\r\nx-ms-error-code: BlobAlreadyExists\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    static const char r304[] = "HTTP/1.1 304 Not Modified\r\nETag: \"0x1\"\r\n"
                               "Connection: close\r\n\r\n";
    static const char r403[] = "HTTP/1.1 403 Forbidden\r\nx-ms-error-code: AuthenticationFailed\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    static const char r409c[] =
        "HTTP/1.1 409 Conflict\r\nx-ms-error-code: ContainerAlreadyExists\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n";
    mock m = {0};
    log_sink logs = {0};
    mock_add(&m, r404, 0);
    mock_add(&m, r412, 0);
    mock_add(&m, r409, 0);
    mock_add(&m, r304, 0);
    mock_add(&m, r403, 0);
    mock_add(&m, r409c, 0);
    mock_start(&m);
    cml_blob_client *c = mock_client(&m, KEY_CRED, &logs, 3);
    cml_blob_props p = {0};
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_delete(c, "ml-models", "gone", NULL, &d), CML_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(d.msg, "BlobNotFound"));
    cml_blob_put_options po = {.if_match = "\"0x1\""};
    ck_assert_int_eq(cml_blob_put(c, "ml-models", "m", "hello", 5, &po, &p, &d), CML_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(d.msg, "ConditionNotMet"));
    po = (cml_blob_put_options){.if_none_match_any = true};
    ck_assert_int_eq(cml_blob_put(c, "ml-models", "m", "hello", 5, &po, &p, &d), CML_ERR_CONFLICT);
    char path[] = "/tmp/cml-test-blob-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(path));
    char target[64];
    snprintf(target, sizeof(target), "%s/model.bin", path);
    cml_blob_get_options go = {.if_none_match = "\"0x1\""};
    ck_assert_int_eq(cml_blob_get_file(c, "ml-models", "m", target, &go, &p, &d), CML_OK);
    ck_assert(p.not_modified);
    ck_assert_int_ne(access(target, F_OK), 0);
    cml_blob_props_release(&p);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "m", &p, &d), CML_ERR_STORAGE);
    ck_assert_ptr_nonnull(strstr(d.msg, "AuthenticationFailed"));
    bool created = true;
    ck_assert_int_eq(cml_blob_create_container(c, "ml-models", &created, &d), CML_OK);
    ck_assert(!created);
    mock_stop(&m);
    ck_assert_int_eq(m.n_requests, 6);
    ck_assert_ptr_nonnull(strstr(m.requests[1], "If-Match: \"0x1\""));
    ck_assert_ptr_nonnull(strstr(m.requests[1], "x-ms-blob-type: BlockBlob"));
    ck_assert_ptr_nonnull(strstr(m.requests[2], "If-None-Match: *"));
    ck_assert_msg(strstr(m.requests[3], "If-None-Match: \"0x1\"") != NULL, "%s", m.requests[3]);
    ck_assert_ptr_nonnull(strstr(m.requests[4], "HEAD /devstoreaccount1/ml-models/m HTTP"));
    ck_assert_ptr_nonnull(
        strstr(m.requests[5], "PUT /devstoreaccount1/ml-models?restype=container"));
    /* Not retried: 4xx are final. Expected answers (304, existing container) are not failures. */
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.requests, 6);
    ck_assert_uint_eq(s.retries, 0);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_NOT_FOUND], 1);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_CONFLICT], 2);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_AUTH], 1);
    ck_assert_int_eq(logs.n, 4);
    cml_blob_client_free(c);
    rmdir(path);
    mock_free(&m);
}
END_TEST

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_download_atomic) {
    static const char partial[] = "HTTP/1.1 200 OK\r\nETag: \"0x2\"\r\nContent-Length: 100\r\n"
                                  "Connection: close\r\n\r\nonly part of the body";
    static const char full[] =
        "HTTP/1.1 200 OK\r\nETag: \"0x3\"\r\nContent-Length: 5\r\n"
        "x-ms-meta-sha256: "
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\r\n"
        "Connection: close\r\n\r\nhello";
    static const char wrong[] =
        "HTTP/1.1 200 OK\r\nETag: \"0x4\"\r\nContent-Length: 5\r\n"
        "x-ms-meta-sha256: "
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\r\n"
        "Connection: close\r\n\r\nHELLO";
    char dir[] = "/tmp/cml-test-blob-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char target[64];
    snprintf(target, sizeof(target), "%s/model.bin", dir);
    FILE *f = fopen(target, "w");
    fputs("old model", f);
    fclose(f);
    mock m = {0};
    log_sink logs = {0};
    /* A body cut short twice (retried as a connection error), then a wrong checksum. */
    mock_add(&m, partial, 0);
    mock_add(&m, partial, 0);
    mock_add(&m, wrong, 0);
    mock_add(&m, full, 0);
    mock_start(&m);
    cml_blob_client *c = mock_client(&m, KEY_CRED, &logs, 1);
    cml_blob_props p = {0};
    cml_diag d = {{0}};
    cml_blob_get_options go = {.verify_sha256 = true};
    ck_assert_int_eq(cml_blob_get_file(c, "ml-models", "m", target, &go, &p, &d), CML_ERR_STORAGE);
    /* The old file is intact and no temporary file is left behind. */
    char buf[64] = {0};
    f = fopen(target, "r");
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf) - 1, f), 9);
    fclose(f);
    ck_assert_str_eq(buf, "old model");
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(cml_blob_get_file(c, "ml-models", "m", target, &go, &p, &d), CML_ERR_CHECKSUM);
    ck_assert_int_eq(count_entries(dir), 1);
    ck_assert_int_eq(cml_blob_get_file(c, "ml-models", "m", target, &go, &p, &d), CML_OK);
    ck_assert_str_eq(p.etag, "\"0x3\"");
    ck_assert_uint_eq(p.length, 5);
    f = fopen(target, "r");
    memset(buf, 0, sizeof(buf));
    ck_assert_uint_eq(fread(buf, 1, sizeof(buf) - 1, f), 5);
    fclose(f);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(count_entries(dir), 1);
    cml_blob_props_release(&p);
    mock_stop(&m);
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_CONNECT], 2);
    ck_assert_uint_eq(s.gave_up, 1);
    cml_blob_client_free(c);
    unlink(target);
    rmdir(dir);
    mock_free(&m);
}
END_TEST

START_TEST(test_connection_refused) {
    /* A port nothing listens on: connection errors are retried, then reported. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    mock m = {.port = ntohs(a.sin_port)};
    close(fd);
    log_sink logs = {0};
    cml_blob_client *c = mock_client(&m, SAS_CRED, &logs, 2);
    cml_blob_list l = {0};
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_list_blobs(c, "ml-models", "models/", &l, &d), CML_ERR_STORAGE);
    cml_blob_list_release(&l);
    ck_assert_int_eq(logs.n, 3);
    for (int i = 0; i < logs.n; i++) {
        ck_assert_ptr_nonnull(strstr(logs.lines[i], "[connect]"));
        ck_assert_ptr_null(strstr(logs.lines[i], TEST_SIG));
    }
    ck_assert_ptr_null(strstr(d.msg, TEST_SIG));
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.failures[CML_BLOB_FAIL_CONNECT], 3);
    ck_assert_uint_eq(s.gave_up, 1);
    ck_assert_str_eq(cml_blob_failure_name(CML_BLOB_FAIL_CONNECT), "connect");
    ck_assert_str_eq(cml_blob_failure_name(CML_BLOB_FAIL__COUNT), "unknown");
    cml_blob_client_free(c);
}
END_TEST

START_TEST(test_list_pages) {
    static const char p1[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n"
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>"
        "<Blob><Name>models/a</Name><Properties><Content-Length>1</Content-Length>"
        "<Etag>\"e1\"</Etag></Properties></Blob></Blobs><NextMarker>m/2</NextMarker>"
        "</EnumerationResults>";
    static const char p2[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n"
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>"
        "<Blob><Name>models/b</Name><Properties><Content-Length>2</Content-Length>"
        "<Etag>\"e2\"</Etag></Properties></Blob></Blobs><NextMarker/></EnumerationResults>";
    mock m = {0};
    log_sink logs = {0};
    mock_add(&m, p1, 0);
    mock_add(&m, p2, 0);
    mock_start(&m);
    cml_blob_client *c = mock_client(&m, KEY_CRED, &logs, 0);
    cml_blob_list l = {0};
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_blob_list_blobs(c, "ml-models", "models/", &l, &d), CML_OK);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.items[1].name, "models/b");
    ck_assert_uint_eq(l.items[1].length, 2);
    cml_blob_list_release(&l);
    mock_stop(&m);
    ck_assert_ptr_nonnull(strstr(m.requests[0], "GET /devstoreaccount1/ml-models?restype=container"
                                                "&comp=list&prefix=models%2F HTTP"));
    ck_assert_ptr_nonnull(strstr(m.requests[1], "&prefix=models%2F&marker=m%2F2 HTTP"));
    cml_blob_client_free(c);
    mock_free(&m);
}
END_TEST

START_TEST(test_client_options) {
    cml_az_conn *conn = parse_ok("AccountName=myaccount");
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    /* No credential and no managed identity. */
    ck_assert_int_eq(cml_blob_client_new(conn, NULL, &c, &d), CML_ERR_CONFIG);
    ck_assert_ptr_null(c);
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.use_managed_identity = true;
    unsetenv("IDENTITY_ENDPOINT");
    unsetenv("IDENTITY_HEADER");
    ck_assert_int_eq(cml_blob_client_new(conn, &o, &c, &d), CML_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(d.msg, "IDENTITY_ENDPOINT"));
    /* Bearer tokens never travel over plain http to a remote host. */
    setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token", 1);
    setenv("IDENTITY_HEADER", "h", 1);
    cml_az_conn_free(conn);
    conn = parse_ok("BlobEndpoint=http://myaccount.blob.core.windows.net");
    ck_assert_int_eq(cml_blob_client_new(conn, &o, &c, &d), CML_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(d.msg, "https"));
    unsetenv("IDENTITY_ENDPOINT");
    unsetenv("IDENTITY_HEADER");
    o.use_managed_identity = false;
    cml_az_conn_free(conn);
    conn = parse_ok("UseDevelopmentStorage=true");
    o.block_size = (size_t)200 << 20;
    ck_assert_int_eq(cml_blob_client_new(conn, &o, &c, &d), CML_ERR_CONFIG);
    cml_blob_options_init(&o);
    ck_assert_int_eq(cml_blob_client_new(conn, &o, &c, &d), CML_OK);
    char *url = cml_blob_url(c, "ml-models", "a b/c");
    ck_assert_str_eq(url, "http://127.0.0.1:10000/devstoreaccount1/ml-models/a%20b/c");
    cml_free(url);
    /* Names are checked before anything is sent. */
    cml_blob_props p = {0};
    ck_assert_int_eq(cml_blob_head(c, "ML_models", "x", &p, &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "", &p, &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "a/../b", &p, &d), CML_ERR_INVALID);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "a\nb", &p, &d), CML_ERR_INVALID);
    cml_blob_meta bad_meta[] = {{"1abc", "x"}};
    cml_blob_put_options po = {.meta = bad_meta, .n_meta = 1};
    ck_assert_int_eq(cml_blob_put(c, "ml-models", "x", "a", 1, &po, NULL, &d), CML_ERR_INVALID);
    cml_blob_meta bad_value[] = {{"note", "line\nbreak"}};
    po.meta = bad_value;
    ck_assert_int_eq(cml_blob_put(c, "ml-models", "x", "a", 1, &po, NULL, &d), CML_ERR_INVALID);
    cml_blob_stats_snapshot s;
    cml_blob_stats_read(cml_blob_client_stats(c), &s);
    ck_assert_uint_eq(s.requests, 0);
    cml_blob_client_free(c);
    cml_blob_client_free(NULL);
    cml_az_conn_free(conn);
}
END_TEST

/* ---- managed identity -------------------------------------------------------------------------
 */

static char mi_reply[4][512];

static const char *make_mi_reply(int i, const char *token, long long expires_on, bool as_string) {
    char body[256];
    if (as_string)
        snprintf(body, sizeof(body),
                 "{\"access_token\":\"%s\",\"expires_on\":\"%lld\",\"resource\":"
                 "\"https://storage.azure.com/\",\"token_type\":\"Bearer\"}",
                 token, expires_on);
    else
        snprintf(body, sizeof(body), "{\"access_token\":\"%s\",\"expires_on\":%lld}", token,
                 expires_on);
    snprintf(mi_reply[i], sizeof(mi_reply[i]),
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(body), body);
    return mi_reply[i];
}

START_TEST(test_managed_identity_cache) {
    mock m = {0};
    long long now = (long long)time(NULL);
    mock_add(&m, make_mi_reply(0, "tok.en-1", now + 100, true), 0); /* inside the margin */
    mock_add(&m, reply_500, 0);                                     /* one retried failure */
    mock_add(&m, make_mi_reply(1, "tok.en-2", now + 3600, false), 0);
    mock_start(&m);
    char endpoint[128];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/msi/token", m.port);
    cml_az_mi_options mo = {.endpoint = endpoint, .header = "hdr-secret", .client_id = "cid 1"};
    cml_az_mi *mi = NULL;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_az_mi_new(&mo, &mi, &d), CML_OK);
    char *tok = NULL;
    time_t exp = 0;
    ck_assert_int_eq(cml_az_mi_token(mi, &tok, &exp, &d), CML_OK);
    ck_assert_str_eq(tok, "tok.en-1");
    ck_assert_int_eq((long long)exp, now + 100);
    cml_free(tok);
    /* Expires within the 300 s margin: refreshed (after one retried 500). */
    ck_assert_int_eq(cml_az_mi_token(mi, &tok, &exp, &d), CML_OK);
    ck_assert_str_eq(tok, "tok.en-2");
    cml_free(tok);
    /* Now cached: no further request. */
    ck_assert_int_eq(cml_az_mi_token(mi, &tok, NULL, &d), CML_OK);
    ck_assert_str_eq(tok, "tok.en-2");
    cml_free(tok);
    ck_assert_uint_eq(cml_az_mi_fetch_count(mi), 3);
    mock_stop(&m);
    ck_assert_int_eq(m.n_requests, 3);
    ck_assert_msg(strncmp(m.requests[0],
                          "GET /msi/token?resource=https%3A%2F%2Fstorage.azure.com%2F&api-version="
                          "2019-08-01&client_id=cid%201 HTTP/1.1",
                          80) == 0,
                  "%s", m.requests[0]);
    ck_assert_ptr_nonnull(strcasestr(m.requests[0], "X-IDENTITY-HEADER: hdr-secret"));
    cml_az_mi_free(mi);
    cml_az_mi_free(NULL);
    mock_free(&m);
}
END_TEST

START_TEST(test_managed_identity_bearer) {
    mock idp = {0}, store = {0};
    long long now = (long long)time(NULL);
    static const char bad_token[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n"
                                    "Connection: close\r\n\r\n{}";
    mock_add(&idp, make_mi_reply(2, "eyJ0eXAi.bearer", now + 7200, true), 0);
    mock_add(&store, reply_head_ok, 0);
    mock_add(&store, reply_head_ok, 0);
    mock_start(&idp);
    mock_start(&store);
    char endpoint[128], conn[256];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/token", idp.port);
    snprintf(conn, sizeof(conn), "BlobEndpoint=http://127.0.0.1:%d/acct1", store.port);
    setenv("IDENTITY_ENDPOINT", endpoint, 1);
    setenv("IDENTITY_HEADER", "env-header", 1);
    cml_blob_options o;
    cml_blob_options_init(&o);
    o.use_managed_identity = true;
    log_sink logs = {0};
    o.log = collect_log;
    o.log_ctx = &logs;
    cml_blob_client *c = NULL;
    cml_diag d = {{0}};
    ck_assert_msg(cml_blob_client_from_string(conn, &o, &c, &d) == CML_OK, "%s", d.msg);
    cml_blob_props p = {0};
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "m", &p, &d), CML_OK);
    ck_assert_int_eq(cml_blob_head(c, "ml-models", "m", &p, &d), CML_OK);
    cml_blob_props_release(&p);
    mock_stop(&idp);
    mock_stop(&store);
    ck_assert_int_eq(idp.n_requests, 1); /* the token was cached for the second request */
    ck_assert_ptr_nonnull(strcasestr(idp.requests[0], "X-IDENTITY-HEADER: env-header"));
    ck_assert_ptr_nonnull(strstr(store.requests[0], "Authorization: Bearer eyJ0eXAi.bearer"));
    ck_assert_ptr_nonnull(strstr(store.requests[1], "Authorization: Bearer eyJ0eXAi.bearer"));
    ck_assert_int_eq(logs.n, 0);
    cml_blob_client_free(c);

    /* An identity endpoint that refuses: the request fails as a config problem. */
    mock idp2 = {0};
    mock_add(&idp2, bad_token, 0);
    mock_start(&idp2);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/token", idp2.port);
    cml_az_mi_options mo = {.endpoint = endpoint, .header = "h"};
    cml_az_mi *mi = NULL;
    ck_assert_int_eq(cml_az_mi_new(&mo, &mi, &d), CML_OK);
    char *tok = NULL;
    ck_assert_int_eq(cml_az_mi_token(mi, &tok, NULL, &d), CML_ERR_CONFIG);
    ck_assert_ptr_null(tok);
    ck_assert_ptr_nonnull(strstr(d.msg, "HTTP 400"));
    mock_stop(&idp2);
    cml_az_mi_free(mi);
    unsetenv("IDENTITY_ENDPOINT");
    unsetenv("IDENTITY_HEADER");
    mock_free(&idp);
    mock_free(&store);
    mock_free(&idp2);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("blob_client");
    TCase *xml = tcase_create("list_xml");
    tcase_add_test(xml, test_parse_list);
    suite_add_tcase(s, xml);
    TCase *http = tcase_create("http");
    tcase_set_timeout(http, 30);
    tcase_add_test(http, test_retry_after_and_sas);
    tcase_add_test(http, test_retries_exhausted);
    tcase_add_test(http, test_error_mapping);
    tcase_add_test(http, test_download_atomic);
    tcase_add_test(http, test_connection_refused);
    tcase_add_test(http, test_list_pages);
    tcase_add_test(http, test_client_options);
    tcase_add_test(http, test_managed_identity_cache);
    tcase_add_test(http, test_managed_identity_bearer);
    suite_add_tcase(s, http);
    int rc = unit_run(s);
    curl_global_cleanup();
    return rc;
}
