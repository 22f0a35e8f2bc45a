/*
 * The blob model store: the models of every instance of the service, kept in
 * one Azure Blob Storage container, with each instance's local store
 * (local_store.h) as its cache. Built on blob_client.h; knows nothing of HTTP
 * servers.
 *
 * Layout of the container (default "ml-models"):
 *
 *   classic/VERSION.model     one model file (model_file.h) per version; written once
 *   ensemble/VERSION.model    (If-None-Match: *), never changed afterwards
 *   classic_latest.model      the pointers (names configurable): a COPY of the latest
 *   ensemble_latest.model     model file of the type, so a plain download of the pointer
 *                             is a usable model
 *   training_data.csv         the data the latest model was trained on
 *   active.json               the selection shared by the instances:
 *       {"active_type":"ensemble","classic_version":"","ensemble_version":"",
 *        "updated_at":"2026-11-26T05:30:12Z"}
 *       a *_version is the pinned version of that type, "" = follow the pointer.
 *
 * Metadata: every model blob (versions and pointers) carries sha256 (lower-case
 * hex SHA-256 of the content), version and model_type; training_data.csv
 * carries sha256 and rows. A model download is accepted only when its content
 * matches the sha256 metadata (which must be present), deserialises as a
 * model file (magic, format version, embedded SHA-256, members), is of the
 * expected type and is the version the metadata names; otherwise it is
 * discarded (nothing reaches the local store), the failure is returned
 * (CML_ERR_CHECKSUM for a hash mismatch or a missing hash, the model file's
 * own error such as CML_ERR_FORMAT otherwise, CML_ERR_INVALID for a wrong type
 * or version) and one line goes to the log callback.
 *
 * Errors: as blob_client.h (CML_ERR_STORAGE for failed requests,
 * CML_ERR_NOT_FOUND, CML_ERR_CONFLICT for a lost conditional write), plus
 * CML_ERR_IO for the local store. Every function fills the cml_diag on
 * failure; no message ever contains an account key, a SAS token or a token.
 *
 * Logging: the client's lines (one per failed attempt) go to opts.client.log,
 * except those about 404, 409 and 412 answers, which the store expects (first
 * start, immutable versions, conditional writes) and reports through its
 * results; they are still counted in the stats. The store adds one line per
 * refused download, pointer move, download and deletion.
 *
 * Threads: a store is immutable after cml_blob_store_open and may be used by
 * any number of threads at once (the client is thread-safe). Writes into a
 * local store go through unique temporary files and rename(2), so processes
 * sharing a store directory never see a partial file; two processes syncing
 * the same (directory, type) at once may both download, and the last rename
 * wins. Within one process, sync a directory from one thread at a time (the
 * local TYPE_latest.model link is swapped through a per-process temporary).
 *
 * The service's integration, in outline:
 *   start-up   cml_blob_store_open; per type cml_blob_store_publish_if_absent when
 *              this instance has a local model (first start of an empty store:
 *              one instance wins, the others adopt its version), else
 *              cml_blob_store_ensure_local; then cml_blob_store_read_active for the
 *              selection (CML_ERR_NOT_FOUND: create it with cml_blob_store_write_active,
 *              if_match NULL, and re-read on CML_ERR_CONFLICT).
 *   sync       every interval, per type, cml_blob_store_ensure_local with the ETag the
 *              previous call returned (one HEAD request, no body, while nothing
 *              changed); a DOWNLOADED result carries the verified model, ready for
 *              cml_registry_install; cml_blob_store_read_active with its ETag (one
 *              conditional GET, 304 while nothing changed); a pinned version comes
 *              from cml_blob_store_fetch_version.
 *   retrain    cml_blob_store_publish (with the pointer ETag last seen: CML_ERR_CONFLICT
 *              means another instance published first; the caller decides), then
 *              cml_blob_store_put_training_data and cml_blob_store_follow_latest;
 *              cml_blob_store_get_training_data for use_azure; cml_blob_store_prune.
 *   health     cml_blob_store_stats: requests, retries, failures by kind, bytes.
 */
#ifndef CML_BLOB_STORE_H
#define CML_BLOB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "azure/blob_client.h"
#include "base/cml_error.h"
#include "model/local_store.h"
#include "model/model.h"
#include "state/shared_state.h"

#define CML_BLOB_STORE_DEFAULT_CONTAINER "ml-models"
#define CML_BLOB_STORE_ENSEMBLE_POINTER "ensemble_latest.model"
#define CML_BLOB_STORE_CLASSIC_POINTER "classic_latest.model"
#define CML_BLOB_STORE_ACTIVE "active.json"
#define CML_BLOB_STORE_TRAINING_DATA "training_data.csv"
/* Content type of model blobs. */
#define CML_BLOB_MODEL_CONTENT_TYPE "application/x-cultivate-model"
/* Metadata names (besides CML_BLOB_META_SHA256). */
#define CML_BLOB_META_VERSION "version"
#define CML_BLOB_META_MODEL_TYPE "model_type"
#define CML_BLOB_META_ROWS "rows"
/* Largest active.json accepted. */
#define CML_BLOB_ACTIVE_MAX_BYTES ((size_t)64 << 10)
/* An ETag as the client reports it (quotes included), NUL-terminated. */
#define CML_BLOB_ETAG_MAX 128

/* ---- opening ---------------------------------------------------------------------- */

typedef struct cml_blob_store_options {
    const char *connection_string; /* required; see azure_connection.h */
    const char *container;         /* NULL: CML_BLOB_STORE_DEFAULT_CONTAINER */
    const char *ensemble_pointer;  /* NULL: CML_BLOB_STORE_ENSEMBLE_POINTER */
    const char *classic_pointer;   /* NULL: CML_BLOB_STORE_CLASSIC_POINTER */
    bool create_container;         /* create the container when missing (default true) */
    cml_blob_options client;       /* CA path, timeouts, retries, managed identity, log */
} cml_blob_store_options;

/* Defaults: every name NULL (its default), create_container true, cml_blob_options_init. */
void cml_blob_store_options_init(cml_blob_store_options *opts);

typedef struct cml_blob_store cml_blob_store;

/*
 * A store over the container of opts (strings copied; the caller keeps opts).
 * Checks the names first (CML_ERR_CONFIG: bad container name, a pointer name
 * that is not a valid blob name, both pointers alike, or a pointer inside the
 * version or reserved names), then makes the client and, with
 * create_container, creates the container unless it exists (one request).
 * *out is freed with cml_blob_store_free.
 */
cml_err cml_blob_store_open(const cml_blob_store_options *opts, cml_blob_store **out,
                            cml_diag *diag);

/* Frees the store and its client. Accepts NULL. */
void cml_blob_store_free(cml_blob_store *s);

/* The store's client (owned by the store), for direct requests in tests and tools. */
cml_blob_client *cml_blob_store_client(cml_blob_store *s);

/* The client's live counters (owned by the store; see cml_blob_stats_read). */
cml_blob_stats *cml_blob_store_stats(cml_blob_store *s);

/* The container name (owned by the store). */
const char *cml_blob_store_container(const cml_blob_store *s);

/* The pointer blob name of a type (owned by the store), or NULL for an unknown type. */
const char *cml_blob_store_pointer(const cml_blob_store *s, cml_model_type type);

/* ---- names (pure) ------------------------------------------------------------------- */

/*
 * "TYPE/VERSION.model" into buf. CML_ERR_INVALID for an unknown type or a
 * version cml_version_valid refuses; CML_ERR_NOMEM when it does not fit in cap.
 */
cml_err cml_blob_store_version_name(cml_model_type type, const char *version, char *buf,
                                    size_t cap);

/*
 * The inverse: true when name is "TYPE/VERSION.model" with a known TYPE and a
 * valid VERSION (then *type and version are set; either may be NULL).
 */
bool cml_blob_store_parse_version_name(const char *name, cml_model_type *type,
                                       char version[CML_VERSION_MAX]);

/*
 * True for a usable pointer name: a valid blob name (1..1024 characters, no
 * control characters, no "." or ".." segment, not ending in '/' or '.') that
 * is neither active.json nor training_data.csv and not under "classic/" or
 * "ensemble/".
 */
bool cml_blob_store_pointer_name_ok(const char *name);

/* ---- active.json (pure) ------------------------------------------------------------- */

/*
 * Parses active.json into *out (generation set to 0). The text must be one
 * JSON object (UTF-8, at most CML_BLOB_ACTIVE_MAX_BYTES, nothing but
 * whitespace after it) with active_type "classic" or "ensemble"; the
 * versions, when present, must be strings that are "" or valid versions;
 * updated_at may be absent (0), a non-negative integer of Unix seconds or an
 * ISO 8601 UTC time ("2026-11-26T05:30:12Z", fractions and "+00:00"
 * accepted). Other keys are ignored. CML_ERR_FORMAT with a diag otherwise;
 * *out is then zeroed.
 */
cml_err cml_blob_active_parse(const char *text, size_t len, cml_selection *out, cml_diag *diag);

/*
 * The active.json text of sel (updated_at written as ISO 8601 UTC). *out is a
 * new string the caller frees with cml_free. CML_ERR_INVALID when sel would
 * not parse back (unknown active_type, invalid version).
 */
cml_err cml_blob_active_format(const cml_selection *sel, char **out, cml_diag *diag);

/* ---- publishing ------------------------------------------------------------------- */

typedef struct cml_blob_publish_result {
    cml_model_type type;
    char version[CML_VERSION_MAX]; /* the version published (if_absent: the type's latest) */
    char sha256[65];               /* of the model file */
    uint64_t bytes;
    bool version_existed; /* TYPE/VERSION.model was there, same sha256 */
    bool pointer_moved;   /* the pointer names this version (now or already) */
    bool adopted;         /* publish_if_absent lost; the winner's version is in dir */
    char pointer_etag[CML_BLOB_ETAG_MAX]; /* the pointer's ETag when known ("" otherwise):
                                             remember it for ensure_local and publish */
} cml_blob_publish_result;

/*
 * Uploads the model file at path (read whole, and refused unless it
 * deserialises) as TYPE/VERSION.model with If-None-Match: *; a blob already
 * there with the same sha256 metadata counts as success (version_existed),
 * one with other content is CML_ERR_CONFLICT (versions are immutable). The
 * pointer is not touched. res (may be NULL) is filled.
 */
cml_err cml_blob_store_upload_version(cml_blob_store *s, const char *path,
                                      cml_blob_publish_result *res, cml_diag *diag);

/*
 * cml_blob_store_upload_version, then moves the type's pointer to that
 * version by writing a copy of the file with a conditional Put:
 *   pointer_etag given: If-Match it (the ETag remembered from ensure_local
 *     or an earlier publish), so that a version another instance published
 *     since is never overwritten unseen;
 *   pointer_etag NULL: If-Match the ETag a HEAD reads just before, or
 *     If-None-Match: * when the type has no pointer yet.
 * With pointer_etag NULL, a pointer that already names this version with
 * the same sha256 is left as it is (success). Losing the condition is
 * CML_ERR_CONFLICT (the version blob stays uploaded); the caller decides
 * (re-sync, retry, give up).
 * res->pointer_etag is the new ETag.
 */
cml_err cml_blob_store_publish(cml_blob_store *s, const char *path, const char *pointer_etag,
                               cml_blob_publish_result *res, cml_diag *diag);

/*
 * First start of an empty store, race-safe between instances: when the type
 * has no pointer, uploads dir/TYPE_VERSION.model (version NULL: the version
 * dir/TYPE_latest.model names) and creates the pointer with If-None-Match: *.
 * When a pointer exists, or another instance creates it first (409/412), the
 * winner's model is adopted instead: cml_blob_store_ensure_local downloads
 * and verifies it into dir and points dir/TYPE_latest.model at it;
 * res->adopted is then true (unless the winner is the same version) and
 * res->version the winner's. res->pointer_etag is the pointer's ETag in
 * both cases. CML_ERR_NOT_FOUND when dir has no such local version.
 */
cml_err cml_blob_store_publish_if_absent(cml_blob_store *s, cml_model_type type, const char *dir,
                                         const char *version, cml_blob_publish_result *res,
                                         cml_diag *diag);

/* ---- syncing into a local store ------------------------------------------------------- */

typedef enum cml_blob_sync_status {
    CML_BLOB_SYNC_NOT_MODIFIED = 1, /* the pointer still has the ETag given, and the local
                                       store has its version: nothing done */
    CML_BLOB_SYNC_PRESENT,          /* the local store already has that version with the
                                       same sha256: nothing downloaded */
    CML_BLOB_SYNC_DOWNLOADED,       /* downloaded, verified and saved into the local store */
    CML_BLOB_SYNC_NO_MODEL,         /* the store has no pointer for the type */
} cml_blob_sync_status;

/* Static name ("not_modified", "present", "downloaded", "no_model"), for logs. */
const char *cml_blob_sync_status_name(cml_blob_sync_status st);

typedef struct cml_blob_sync_result {
    cml_blob_sync_status status;
    cml_model_type type;
    char version[CML_VERSION_MAX]; /* the version concerned, NOT_MODIFIED included ("" for
                                      NO_MODEL, or when the pointer has no version metadata
                                      and nothing was downloaded) */
    char sha256[65];               /* of its file */
    uint64_t bytes;
    char etag[CML_BLOB_ETAG_MAX]; /* of the blob read (the pointer for ensure_local):
                                     pass it back next time; "" for NO_MODEL */
    char path[4096];              /* the local file, dir/TYPE_VERSION.model ("" for NO_MODEL) */
    cml_model *model; /* DOWNLOADED only: the verified model (one reference, owned by the
                         result, released by cml_blob_sync_result_release); else NULL */
} cml_blob_sync_result;

/* Releases res->model and zeroes res. Accepts NULL. */
void cml_blob_sync_result_release(cml_blob_sync_result *res);

/*
 * Makes the local store dir (created when missing) hold the type's latest
 * model and points dir/TYPE_latest.model at it:
 *   1. HEAD the pointer (404: NO_MODEL, CML_OK). When etag is the ETag it
 *      still has and dir holds the version it names: NOT_MODIFIED. That is
 *      one request and no body: the conditional check is made on the HEAD's
 *      ETag (cml_blob_head sends no If-None-Match; the cost is the same). A
 *      pointer without sha256 metadata is refused (CML_ERR_CHECKSUM); one
 *      without version metadata is identified by its content once downloaded.
 *   2. When dir already has TYPE_VERSION.model with the pointer's sha256:
 *      PRESENT (the local pointer is moved if needed; nothing downloaded).
 *   3. Otherwise GET the pointer with If-Match the HEAD's ETag, verify it
 *      (see the top of this file), write it to dir/TYPE_VERSION.model through
 *      a temporary file + fsync + rename, and point dir/TYPE_latest.model at
 *      it: DOWNLOADED, with the model in res->model. When the pointer moves
 *      between the HEAD and the GET, it starts again (at most 3 times, then
 *      CML_ERR_CONFLICT).
 * A refused download leaves dir untouched. res is overwritten (release a
 * previous result first) and must be released with
 * cml_blob_sync_result_release, also after a failure.
 */
cml_err cml_blob_store_ensure_local(cml_blob_store *s, cml_model_type type, const char *dir,
                                    const char *etag, cml_blob_sync_result *res, cml_diag *diag);

/*
 * The same for one version (a pinned one, or an operator's download): reads
 * TYPE/VERSION.model (CML_ERR_NOT_FOUND when absent), PRESENT or DOWNLOADED
 * into dir as above; dir/TYPE_latest.model is moved only with make_latest.
 * res->etag is the version blob's. Release res as above.
 */
cml_err cml_blob_store_fetch_version(cml_blob_store *s, cml_model_type type, const char *version,
                                     const char *dir, bool make_latest, cml_blob_sync_result *res,
                                     cml_diag *diag);

/* ---- the selection (active.json) -------------------------------------------------------- */

/*
 * Reads active.json into *sel and its ETag into etag (may be NULL). With
 * if_none_match (an ETag from an earlier read) an unchanged blob answers 304:
 * *not_modified (may be NULL) is set, *sel and etag are left as they were.
 * CML_ERR_NOT_FOUND when absent; CML_ERR_FORMAT when it does not parse
 * (cml_blob_active_parse): *sel is then left as it was, but etag gets the
 * blob's ETag so that the caller may replace it with write_active.
 */
cml_err cml_blob_store_read_active(cml_blob_store *s, const char *if_none_match, cml_selection *sel,
                                   char etag[CML_BLOB_ETAG_MAX], bool *not_modified,
                                   cml_diag *diag);

/*
 * Writes active.json from *sel: with if_match only over that ETag, with
 * if_match NULL only when there is none yet (If-None-Match: *). A lost
 * condition is CML_ERR_CONFLICT (re-read and decide). etag_out (may be NULL)
 * gets the new ETag. CML_ERR_INVALID when sel is not valid.
 */
cml_err cml_blob_store_write_active(cml_blob_store *s, const cml_selection *sel,
                                    const char *if_match, char etag_out[CML_BLOB_ETAG_MAX],
                                    cml_diag *diag);

/*
 * Edits the current selection. *sel is the stored one (zeroed when exists is
 * false); return true to write *sel back, false to leave the store as it is.
 */
typedef bool (*cml_blob_active_edit_fn)(void *ctx, cml_selection *sel, bool exists);

/*
 * Read-modify-write of active.json: reads it, calls edit, writes the result
 * conditionally (If-Match the ETag read, or If-None-Match: * when absent),
 * and on a lost condition starts again (at most 5 times, then
 * CML_ERR_CONFLICT); edit must therefore only depend on *sel. out and
 * etag_out (may be NULL) get the selection and ETag in the store afterwards
 * (out zeroed and etag_out "" when it still does not exist).
 */
cml_err cml_blob_store_update_active(cml_blob_store *s, cml_blob_active_edit_fn edit, void *ctx,
                                     cml_selection *out, char etag_out[CML_BLOB_ETAG_MAX],
                                     cml_diag *diag);

/*
 * The edit after publishing a new latest version of a type: when active.json
 * exists, clears the pin of that type (the type follows its pointer again)
 * and sets updated_at to now; when it does not exist it is left absent.
 */
cml_err cml_blob_store_follow_latest(cml_blob_store *s, cml_model_type type, cml_diag *diag);

/* ---- versions --------------------------------------------------------------------------- */

typedef struct cml_blob_version {
    char version[CML_VERSION_MAX];
    char sha256[65]; /* from the blob's metadata; "" when not asked for or absent */
    uint64_t bytes;
    char etag[CML_BLOB_ETAG_MAX];
    char last_modified[64];
    bool latest; /* the pointer names this version */
} cml_blob_version;

/*
 * The versions of a type in the store (blobs TYPE/VERSION.model with a valid
 * version), newest first (versions sort by time), with the one the pointer
 * names flagged. with_sha256 costs one HEAD per version; without it, one
 * List Blobs (per page) and one HEAD of the pointer. *out is a new array the
 * caller frees with cml_free (NULL when *n is 0); latest (may be NULL) gets
 * the pointer's version, "" when there is no pointer. A missing container is
 * CML_ERR_NOT_FOUND.
 */
cml_err cml_blob_store_list_versions(cml_blob_store *s, cml_model_type type, bool with_sha256,
                                     cml_blob_version **out, size_t *n,
                                     char latest[CML_VERSION_MAX], cml_diag *diag);

/*
 * Deletes TYPE/VERSION.model. Refused with CML_ERR_CONFLICT when the pointer
 * names that version or active.json pins it; CML_ERR_NOT_FOUND when absent.
 * (A version can still become the latest between the check and the delete
 * only if someone re-publishes an old version at that moment.)
 */
cml_err cml_blob_store_delete_version(cml_blob_store *s, cml_model_type type, const char *version,
                                      cml_diag *diag);

/*
 * Retention: deletes the versions of a type beyond the newest `retain`
 * (at least 1), never the pointer's or a pinned one. *deleted (may be NULL)
 * counts the deletions; versions that vanished meanwhile are skipped.
 */
cml_err cml_blob_store_prune(cml_blob_store *s, cml_model_type type, size_t retain, size_t *deleted,
                             cml_diag *diag);

/* ---- training data ------------------------------------------------------------------------ */

/*
 * Uploads the CSV file at path as training_data.csv (unconditionally: the
 * data of the latest model replaces the previous), with metadata sha256 and
 * rows. sha256_out (may be NULL) gets the content's hash.
 */
cml_err cml_blob_store_put_training_data(cml_blob_store *s, const char *path, size_t rows,
                                         char sha256_out[65], cml_diag *diag);

/*
 * Downloads training_data.csv to path (temporary file, fsync, rename: path
 * is untouched on failure), checked against its sha256 metadata, which must
 * be present (CML_ERR_CHECKSUM otherwise). sha256_out and rows (may be NULL)
 * get its hash and its rows metadata (0 when absent). CML_ERR_NOT_FOUND when
 * the store has none.
 */
cml_err cml_blob_store_get_training_data(cml_blob_store *s, const char *path, char sha256_out[65],
                                         size_t *rows, cml_diag *diag);

#endif
