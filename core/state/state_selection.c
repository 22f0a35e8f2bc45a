/* The selection (active type and pins) and its generation. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "state/state_internal.h"

static cml_err read_selection(cml_state *st, cml_selection *out) {
    state_stmt *s =
        state_prep(st, "SELECT active_type, classic_version, ensemble_version, updated_at,"
                       " generation FROM selection WHERE id = 1");
    if (s == NULL)
        return state_failure(st);
    state_step_result rc = state_step(s);
    cml_err err = rc == STATE_ROW    ? CML_OK
                  : rc == STATE_DONE ? CML_ERR_NOT_FOUND
                                     : state_failure(st);
    if (err == CML_OK) {
        state_copy_col(out->active_type, sizeof out->active_type, s, 0);
        state_copy_col(out->classic_version, sizeof out->classic_version, s, 1);
        state_copy_col(out->ensemble_version, sizeof out->ensemble_version, s, 2);
        out->updated_at = state_col_int64(s, 3);
        out->generation = (uint64_t)state_col_int64(s, 4);
    }
    state_finalize(s);
    return err;
}

cml_err cml_state_get_selection(cml_state *st, cml_selection *out) {
    pthread_mutex_lock(&st->lock);
    cml_err err = read_selection(st, out);
    pthread_mutex_unlock(&st->lock);
    return err;
}

/* Writes the selection and a new generation inside one transaction; publishes the counter. */
static cml_err write_selection(cml_state *st, cml_selection *sel, bool only_if_absent,
                               bool keep_time) {
    cml_err err = CML_OK;
    state_stmt *s = NULL;
    if (state_begin(st) != CML_OK)
        return state_failure(st);
    cml_selection cur;
    cml_err have = read_selection(st, &cur);
    if (have == CML_OK && only_if_absent) {
        *sel = cur;
        goto commit;
    }
    uint64_t gen = (have == CML_OK ? cur.generation : 0) + 1;
    uint64_t mapped = atomic_load(st->generation);
    if (mapped >= gen)
        gen = mapped + 1;
    s = state_prep(
        st, "INSERT INTO selection (id, active_type, classic_version, ensemble_version,"
            " updated_at, generation) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " active_type = excluded.active_type, classic_version = excluded.classic_version,"
            " ensemble_version = excluded.ensemble_version, updated_at = excluded.updated_at,"
            " generation = excluded.generation");
    if (s == NULL) {
        err = state_failure(st);
        goto rollback;
    }
    if (!keep_time || sel->updated_at <= 0)
        sel->updated_at = (int64_t)time(NULL);
    sel->generation = gen;
    state_bind_text(s, 1, sel->active_type);
    state_bind_text(s, 2, sel->classic_version);
    state_bind_text(s, 3, sel->ensemble_version);
    state_bind_int64(s, 4, sel->updated_at);
    state_bind_int64(s, 5, (int64_t)gen);
    /* The fleet hears of it when (and only if) the transaction commits. */
    if (state_step(s) != STATE_DONE ||
        (st->drv->notify && st->drv->notify(st->db, gen) != CML_OK)) {
        err = state_failure(st);
        goto rollback;
    }
commit:
    if (state_commit(st) != CML_OK) {
        err = state_failure(st);
        goto rollback;
    }
    state_finalize(s);
    /* Published after the commit, so a worker that sees it reads the new row. */
    if (atomic_load(st->generation) < sel->generation)
        atomic_store_explicit(st->generation, sel->generation, memory_order_release);
    return CML_OK;
rollback:
    state_finalize(s);
    state_rollback(st);
    return err;
}

cml_err cml_state_set_selection(cml_state *st, cml_selection *sel) {
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, sel, false, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_adopt_selection(cml_state *st, cml_selection *sel) {
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, sel, false, true);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_init_selection(cml_state *st, const char *active_type, cml_selection *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->active_type, sizeof out->active_type, "%s", active_type);
    pthread_mutex_lock(&st->lock);
    cml_err err = write_selection(st, out, true, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_touch(cml_state *st) {
    cml_selection sel;
    pthread_mutex_lock(&st->lock);
    cml_err err = read_selection(st, &sel);
    if (err == CML_OK)
        err = write_selection(st, &sel, false, false);
    pthread_mutex_unlock(&st->lock);
    return err;
}
