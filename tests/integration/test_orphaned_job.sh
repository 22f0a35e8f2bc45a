#!/bin/bash
# An orphaned training job (issue 15, defect 2) through lighttpd + spawn-fcgi -F 2: a retrain
# starts, the worker that started it is killed with SIGKILL, then its trainer is. Nobody is
# left to see the trainer end, yet the job's state must follow it: the job's lease in the
# shared state is no longer renewed (and the pid is gone or a zombie), so the surviving worker
# marks it failed; status says failed within 10 s (the lease is 6 s), health stops saying
# training, and a new retrain is accepted (202, not 409). Then a trainer stopped with SIGSTOP
# (alive but hung): its lease runs out and the job fails. Exits 77 without lighttpd.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require lighttpd || exit 77
cml_env_init
export OMP_WAIT_POLICY=passive

cml_prepare_models
CML_MODEL_TYPE=classic
cml_stack_start lighttpd fork 2 "$(cml_new_state orphan)"

# post_retrain BODY: prints "STATUS TASK_ID".
post_retrain() {
    local out
    out=$(curl --noproxy '*' -s --max-time 30 -w '\n%{http_code}' -H "X-API-Key: $CML_API_KEY" \
        -H 'Content-Type: application/json' --data "$1" "$CML_BASE_URL/api/v1/models/retrain")
    printf '%s %s\n' "${out##*$'\n'}" \
        "$(printf '%s' "${out%$'\n'*}" | sed -n 's/.*"task_id": *"\([^"]*\)".*/\1/p')"
}
# job_status TASK: the status field of the job.
job_status() {
    curl --noproxy '*' -s --max-time 5 "$CML_BASE_URL/api/v1/models/training/status/$1" |
        sed -n 's/.*"status": *"\([^"]*\)".*/\1/p'
}

# find_trainer TASK: sets trainer and worker to the trainer of TASK and the worker that
# started it (5 s at most); fails the test without one.
find_trainer() {
    trainer=
    worker=
    for _ in $(seq 1 500); do
        for w in $CML_WORKER_PIDS; do
            for c in $(cml_children_of "$w"); do
                if tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q -- "--job $1 "; then
                    trainer=$c
                    worker=$w
                fi
            done
        done
        [ -n "$trainer" ] && return 0
        sleep 0.01
    done
    cml_fail "no trainer process for job $1"
}

# cv_folds 20: the classic model trains for many seconds, long enough to find its trainer.
read -r code task < <(post_retrain '{"model_type":"classic","hyperparameters":{"cv_folds":20}}')
{ [ "$code" = 202 ] && [ -n "$task" ]; } || cml_fail "retrain answered $code (task '$task')"
find_trainer "$task"
[ "$(job_status "$task")" = running ] || cml_fail "job $task is not running before the kills"
cml_log "job $task: trainer $trainer started by worker $worker"

kill -KILL "$worker"
for _ in $(seq 1 500); do
    cml_alive "$worker" || break
    sleep 0.01
done
cml_alive "$worker" && cml_fail "worker $worker survived SIGKILL"
cml_alive "$trainer" || cml_fail "the trainer died with its worker"
kill -KILL "$trainer"
t0=$(cml_now)

st=
for _ in $(seq 1 100); do
    st=$(job_status "$task")
    [ "$st" = failed ] && break
    sleep 0.1
done
secs=$(cml_elapsed "$t0")
[ "$st" = failed ] || {
    cml_dump_logs
    cml_fail "job $task still '$st' $secs s after its worker and trainer were killed"
}
health=$(curl --noproxy '*' -s --max-time 5 "$CML_BASE_URL/api/health")
printf '%s' "$health" | grep -q '"is_training": *true' &&
    cml_fail "health still says training: $health"
read -r code task2 < <(post_retrain '{"model_type":"classic"}')
[ "$code" = 202 ] || cml_fail "a new retrain answered $code after the orphaned job failed"
for _ in $(seq 1 1200); do
    st2=$(job_status "$task2")
    [ "$st2" = running ] || break
    sleep 0.1
done
[ "$st2" = completed ] || cml_fail "the next job $task2 ended '$st2'"

# A hung trainer (stopped, its pid alive and its worker too): only the lease can tell; the job
# fails once the lease runs out, and the trainer, woken with SIGKILL, changes nothing.
read -r code task3 < <(post_retrain '{"model_type":"classic","hyperparameters":{"cv_folds":20}}')
[ "$code" = 202 ] || cml_fail "the third retrain answered $code"
find_trainer "$task3"
# Its first renewal is in the state before it is stopped.
sleep 1.5
kill -STOP "$trainer"
t0=$(cml_now)
for _ in $(seq 1 150); do
    st3=$(job_status "$task3")
    [ "$st3" = failed ] && break
    sleep 0.1
done
secs3=$(cml_elapsed "$t0")
cml_alive "$trainer" || cml_fail "the stopped trainer $trainer is gone"
kill -KILL "$trainer"
[ "$st3" = failed ] || cml_fail "job $task3 of a stopped trainer still '$st3' after $secs3 s"
curl --noproxy '*' -s --max-time 5 "$CML_BASE_URL/api/v1/models/training/status/$task3" |
    grep -q 'lease' || cml_fail "job $task3 failed for another reason than its lease"
cml_stack_stop || cml_fail "lighttpd stack did not stop within 10 s of SIGTERM"
echo "orphaned job $task failed $secs s after its worker and trainer were killed; next job $task2 completed; job $task3 of a stopped trainer failed $secs3 s after the stop (lease)"
