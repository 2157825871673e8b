#!/bin/sh
# sanitized_run.sh SIM SCENARIO OUT [SIM RUN OPTIONS...]
#
# `sim run` in a sanitizer build. Sanitized components run several times slower, so timing gates
# (the seeds' claims, the recovery bound) cannot hold: a failed gate (exit 1) is tolerated. A
# sanitizer report from `sim` or from any component it started is not: every report goes to a
# file beside the report folder, and any such file fails the test with its contents.
sim=$1 scenario=$2 out=$3
shift 3
logs="$out.sanitizer"
rm -rf "$logs" && mkdir -p "$logs" || exit 2
export ASAN_OPTIONS="log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Debian's cpp-httplib is a compiled library, not built with -fsanitize=thread: TSan cannot see
# its atomics and would report its own socket and buffer handling (close() in Server::stop() after
# socket() on the listening thread). The flag below is TSan's for such libraries: accesses made by
# interceptors called from them are ignored; every access made by our code is still checked.
export TSAN_OPTIONS="ignore_noninstrumented_modules=1:log_path=$logs/tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
"$sim" run "$scenario" --quiet --out "$out" "$@"
rc=$?
if [ -n "$(ls -A "$logs")" ]; then
  echo "sanitizer reports (exit $rc):"
  for f in "$logs"/*; do echo "== $f"; cat "$f"; done
  exit 1
fi
echo "exit $rc, no sanitizer report"
[ $rc -eq 0 ] || [ $rc -eq 1 ]
