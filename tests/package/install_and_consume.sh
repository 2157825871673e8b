#!/usr/bin/env bash
# `cmake --install` of this build into a temporary prefix, then a separate project configured
# against it with find_package(qsim REQUIRED), built, and run on a scenario through the model.
#   install_and_consume.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"; src="$2"
work="$(mktemp -d /tmp/qsim-package-XXXXXX)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/lib/cmake/qsim/qsimConfig.cmake" || { echo "no qsimConfig.cmake installed"; exit 1; }
cmake -S "$src/tests/package/project" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" -j 2 >/dev/null
"$work/build/consumer" "$src/scenarios/100_orders.json"
