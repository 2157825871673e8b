# Shared by scripts/test, scripts/bench and scripts/sim: install what is missing,
# configure and build. Source it; do not run it.
#
# Environment:
#   BUILD_DIR   build directory (default: build)
#   BUILD_TYPE  CMake build type (default: Release)
#   JOBS        parallel build jobs (default: 2)
#   CMAKE_ARGS  extra arguments for the configure step (e.g. -DSANITIZE=address,undefined)

set -euo pipefail

QSIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$QSIM_ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-Release}"
JOBS="${JOBS:-2}"

# Debian packages the build, the tests and the benchmarks need.
QSIM_PACKAGES=(
  build-essential cmake pkg-config
  redis-server redis-tools
  libhiredis-dev libboost-dev libboost-filesystem-dev nlohmann-json3-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libcpp-httplib-dev libspdlog-dev
)
# The queue frameworks under test (issue #11) run their real workers: Debian's RQ, Celery and
# Sidekiq, and Node.js for BullMQ (installed from npm with its lockfile: install_bullmq).
QSIM_PACKAGES+=(python3 python3-rq python3-celery python3-redis ruby ruby-sidekiq ruby-redis)
# skew_clock runs a component's wall clock through libfaketime.
QSIM_PACKAGES+=(faketime)
command -v node >/dev/null 2>&1 || QSIM_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || QSIM_PACKAGES+=(npm)
# Only the test suite needs these: the HTML report is rendered in headless Chromium, and the
# dashboard is clicked through in it by ChromeDriver.
QSIM_TEST_PACKAGES=(chromium chromium-driver)

log() { printf '[qsim] %s\n' "$*" >&2; }

install_missing_packages() {
  local missing=()
  for p in "${QSIM_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      log "not root and no sudo: install these by hand: ${missing[*]}"; return 1
    fi
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system redis on 6379 when it installs the package; we never use it.
}

build_project() {
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || [ -n "${CMAKE_ARGS:-}" ]; then
    log "configuring ($BUILD_TYPE) in $BUILD_DIR"
    # shellcheck disable=SC2086
    cmake -S "$QSIM_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-} >/dev/null
  fi
  log "building with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# BullMQ from npm, pinned by system/frameworks/bullmq/package-lock.json; again only when the
# lockfile changed since the last install.
install_bullmq() {
  local dir="$QSIM_ROOT/system/frameworks/bullmq"
  [ -f "$dir/package-lock.json" ] || return 0
  if [ -f "$dir/node_modules/.package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return 0
  fi
  log "installing BullMQ with npm ci (system/frameworks/bullmq)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# setup_and_build [extra Debian packages...]
setup_and_build() {
  install_missing_packages "$@"
  install_bullmq
  build_project
}
