#!/bin/bash
# The HTTP contract through Apache (event MPM, mod_proxy_fcgi) + spawn-fcgi + cultivate-ml-fcgi
# on 127.0.0.1 (see cml_service_test in service_env.sh). Exits 77 when Apache with
# mod_proxy_fcgi or spawn-fcgi is missing.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=service_env.sh
. "$here/service_env.sh"
cml_require apache || exit 77
cml_env_init
cml_service_test apache
