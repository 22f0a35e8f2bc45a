#!/bin/sh
# Runs inside the clean Debian 12 container of test_package.sh, one step per call:
#   inside.sh prepare | install DIR | start | check | apache | select | persisted |
#             upgrade DIR | stop | remove | purge
# The container has no systemd: `start` runs the unit's ExecStartPre and ExecStart the way
# systemd would (as the unit's User and Group, with its Environment, its RuntimeDirectory and
# StateDirectory made; an ExecStartPre marked + as root), and lighttpd is started from its own configuration.
set -eu
export DEBIAN_FRONTEND=noninteractive
unit=/lib/systemd/system/cultivate-ml.service
base=http://127.0.0.1:80
fail() { echo "package test: $*" >&2; exit 1; }
key() { # KEY: the unit's value of KEY, continuation lines joined
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$unit" | sed -n "s/^$1=//p" | tr -s ' '
}
wait_url() { # URL SECONDS
    i=0
    until curl -fsS "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -le "$2" ] || { tail -n 30 /var/log/cultivate-ml.log 2>/dev/null; fail "$1 never answered"; }
        sleep 1
    done
}
start_lighttpd() {
    pkill_lighttpd
    lighttpd -tt -f /etc/lighttpd/lighttpd.conf
    lighttpd -f /etc/lighttpd/lighttpd.conf
}
pkill_lighttpd() {
    if [ -s /run/lighttpd.pid ]; then
        kill "$(cat /run/lighttpd.pid)" 2>/dev/null || true
        sleep 1
    fi
}
install_debs() { # DIR: every package in it, with every dependency from the archive
    # Nothing starts services while packages are configured (no init system here); the test
    # starts them itself below.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    apt-get install -y -q --no-install-recommends "$1"/*.deb >/tmp/apt.log 2>&1 ||
        { tail -n 30 /tmp/apt.log; fail "apt-get install $1/*.deb failed"; }
    rm -f /usr/sbin/policy-rc.d
}

case "$1" in
prepare)
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends curl procps >/dev/null 2>&1
    ;;
install)
    install_debs "$2"
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' cultivate-ml cultivate-ml-lighttpd cultivate-ml-apache2
    getent passwd cultivate-ml >/dev/null || fail "no cultivate-ml user"
    [ -d /var/lib/cultivate-ml ] || fail "no /var/lib/cultivate-ml"
    [ "$(stat -c %U /var/lib/cultivate-ml)" = cultivate-ml ] || fail "/var/lib/cultivate-ml not the user's"
    grep -qx /etc/cultivate-ml.conf /var/lib/dpkg/info/cultivate-ml.conffiles || fail "no conffile"
    [ -L /etc/lighttpd/conf-enabled/50-cultivate-ml.conf ] || fail "lighttpd snippet not enabled"
    [ -L /etc/apache2/conf-enabled/cultivate-ml.conf ] || fail "apache2 conf not enabled"
    a2query -m proxy_fcgi >/dev/null || fail "proxy_fcgi not enabled"
    apache2ctl -t 2>&1 | grep -q "Syntax OK" || fail "apache2 configuration broken"
    [ -e /lib/systemd/system/cultivate-ml.service ] || fail "no unit"
    [ -L /etc/systemd/system/multi-user.target.wants/cultivate-ml.service ] || fail "unit not enabled"
    for m in cultivate-ml.1 cultivate-ml-fcgi.8 cultivate-ml.conf.5; do
        ls /usr/share/man/man*/"$m".gz >/dev/null || fail "no man page $m"
    done
    [ -s /usr/share/cultivate-ml/questions.csv ] || fail "no bundled data"
    [ -s /usr/share/cultivate-ml/dashboard/index.html ] || fail "no dashboard"
    grep -q SwaggerUIBundle /usr/share/cultivate-ml/apidocs/swagger-ui-bundle.js ||
        fail "/api/docs/ ships the stand-in bundle, not Swagger UI"
    echo "package test: installed; user, state directory, conffile, enabled unit, man pages, dashboard, Swagger UI and both front ends' snippets in place"
    ;;
start)
    user=$(key User) group=$(key Group)
    for d in $(key RuntimeDirectory); do install -d -o "$user" -g "$group" "/run/$d"; done
    for d in $(key StateDirectory); do install -d -o "$user" -g "$group" -m 0750 "/var/lib/$d"; done
    envs=$(key Environment)
    cmd=$(key ExecStart)
    echo "package test: no systemd in the container: running the unit's ExecStartPre and ExecStart as $user:$group with $envs"
    as_user="setpriv --reuid=$user --regid=$group --clear-groups --inh-caps=-all"
    key ExecStartPre | while read -r pre; do
        case "$pre" in
        +*) pre=${pre#+} runner="" ;;
        *) runner=$as_user ;;
        esac
        # shellcheck disable=SC2086
        $runner env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/cultivate-ml $envs $pre >/dev/null ||
            fail "ExecStartPre $pre failed"
    done
    # shellcheck disable=SC2086
    setsid $as_user \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/cultivate-ml $envs $cmd \
        >>/var/log/cultivate-ml.log 2>&1 </dev/null &
    echo $! >/run/cml-test.pid
    i=0
    until [ -S /run/cultivate-ml/fcgi.sock ]; do
        i=$((i + 1)); [ $i -le 30 ] || fail "no socket"; sleep 1
    done
    ls -l /run/cultivate-ml/fcgi.sock
    [ "$(stat -c %G /run/cultivate-ml/fcgi.sock)" = www-data ] || fail "socket not www-data's"
    start_lighttpd
    t0=$(date +%s)
    # Ready once the models are loaded: at first start, once both are trained (a minute or more
    # on a loaded machine).
    wait_url "$base/api/ready" 900
    echo "package test: ready through lighttpd $(($(date +%s) - t0)) s after the start"
    ;;
check)
    curl -fsS "$base/api/health" | tee /tmp/health.json | grep -q '"status": *"healthy"' ||
        { cat /tmp/health.json; fail "health not healthy"; }
    out=$(curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"text": "What do you think will happen if we add more water?"}' \
        "$base/api/v1/models/classify") || fail "classify failed"
    echo "$out" | grep -q '"classification": *"OEQ"' || fail "classify answered $out"
    echo "package test: classify and health answer through lighttpd ($(echo "$out" | head -c 120)...)"
    ls /var/lib/cultivate-ml/models | head
    ;;
apache)
    # The other front end on the same port: lighttpd stops, Apache with the package's conf
    # answers classify, then lighttpd comes back.
    pkill_lighttpd
    apache2ctl start
    i=0
    until out=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"text": "Is it red?"}' \
        "$base/api/v1/models/classify" 2>/dev/null); do
        i=$((i + 1)); [ $i -le 30 ] || { tail -n 20 /var/log/apache2/error.log; fail "no classify through Apache"; }
        sleep 1
    done
    echo "$out" | grep -q '"classification": *"CEQ"' || fail "classify through Apache answered $out"
    apache2ctl stop
    sleep 1
    start_lighttpd
    wait_url "$base/api/ready" 30
    echo "package test: classify answers through Apache too (cultivate-ml-apache2's conf)"
    ;;
select)
    curl -fsS -X POST -H 'Content-Type: application/json' -d '{"model_type": "classic"}' \
        "$base/api/v1/models/select" >/dev/null || fail "select failed"
    curl -fsS "$base/api/v1/models/current" | grep -q '"model_type": *"classic"' || fail "selection not classic"
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"text": "Is it red?", "correct_class": "CEQ", "predicted_class": "CEQ"}' \
        "$base/api/feedback" | grep -q '"status": *"success"' || fail "feedback not stored"
    echo "package test: classic selected, one feedback item stored"
    ;;
persisted)
    curl -fsS "$base/api/v1/models/current" | grep -q '"model_type": *"classic"' ||
        fail "the selection was lost"
    n=$(setpriv --reuid=cultivate-ml --regid=cultivate-ml --init-groups \
        cultivate-ml feedback export --state-dir /var/lib/cultivate-ml | grep -c "Is it red?" || true)
    [ "$n" -ge 1 ] || fail "the feedback item was lost"
    echo "package test: selection (classic) and the feedback item kept"
    ;;
stop)
    # What systemd's stop does (KillMode=mixed): SIGTERM to the main process, then the rest.
    if [ -s /run/cml-test.pid ]; then
        pid=$(cat /run/cml-test.pid)
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 15 ]; do i=$((i + 1)); sleep 1; done
        pkill -KILL -u cultivate-ml 2>/dev/null || true
        rm -f /run/cml-test.pid
    fi
    pkill_lighttpd
    ;;
upgrade)
    old=$(dpkg-query -W -f='${Version}' cultivate-ml)
    install_debs "$2"
    new=$(dpkg-query -W -f='${Version}' cultivate-ml)
    dpkg --compare-versions "$new" gt "$old" || fail "not upgraded: $old -> $new"
    echo "package test: upgraded $old -> $new"
    ;;
remove)
    for p in cultivate-ml cultivate-ml-lighttpd cultivate-ml-apache2; do dpkg -L "$p"; done |
        sort -u >/tmp/files.txt
    apt-get remove -y -q cultivate-ml cultivate-ml-lighttpd cultivate-ml-apache2 >/tmp/apt.log 2>&1 ||
        { tail -n 30 /tmp/apt.log; fail "remove failed"; }
    [ ! -e /usr/sbin/cultivate-ml-fcgi ] || fail "program left after remove"
    ls /var/lib/cultivate-ml/models/* >/dev/null 2>&1 || fail "remove deleted the models"
    getent passwd cultivate-ml >/dev/null || fail "remove deleted the user"
    [ -e /etc/cultivate-ml.conf ] || fail "remove deleted the configuration"
    [ ! -e /etc/lighttpd/conf-enabled/50-cultivate-ml.conf ] || fail "lighttpd snippet still enabled"
    [ ! -e /etc/apache2/conf-enabled/cultivate-ml.conf ] || fail "apache2 conf still enabled"
    echo "package test: removed; models, state, user and configuration kept"
    ;;
purge)
    apt-get purge -y -q cultivate-ml cultivate-ml-lighttpd cultivate-ml-apache2 >/tmp/apt.log 2>&1 ||
        { tail -n 30 /tmp/apt.log; fail "purge failed"; }
    left=""
    while read -r f; do
        [ -d "$f" ] && continue # shared directories such as /usr/bin (or /lib, a link to one)
        [ -e "$f" ] || [ -L "$f" ] && left="$left $f"
    done </tmp/files.txt
    for d in /var/lib/cultivate-ml /etc/cultivate-ml /etc/cultivate-ml.conf /usr/share/cultivate-ml \
        /etc/lighttpd/conf-available/50-cultivate-ml.conf /etc/apache2/conf-available/cultivate-ml.conf \
        /etc/systemd/system/multi-user.target.wants/cultivate-ml.service; do
        [ -e "$d" ] || [ -L "$d" ] && left="$left $d"
    done
    [ -z "$left" ] || fail "left after purge:$left"
    ! getent passwd cultivate-ml >/dev/null || fail "user left after purge"
    ! getent group cultivate-ml >/dev/null || fail "group left after purge"
    ! dpkg-query -W cultivate-ml >/dev/null 2>&1 || fail "dpkg still knows cultivate-ml"
    echo "package test: purged; no file of the packages, no state, configuration or user left"
    ;;
*) fail "unknown step $1" ;;
esac
