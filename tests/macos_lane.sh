#!/usr/bin/env bash
# The macOS-profile lane: the suite once more, in an interpreter that plays a Mac (see
# tests/macos_profile/sitecustomize.py): sys.platform "darwin", so watchd takes the Darwin side of
# its platform seam and watchdog's FSEvents observer; Linux-only calls removed or refused, loudly.
#
#   bash tests/macos_lane.sh                      # the whole suite
#   bash tests/macos_lane.sh tests/unit -x        # any pytest arguments
#
# Linux-only tests (the linux_only marker, the Linux side of the seam, watchd's inotify tree) are
# skipped by tests/conftest.py, each with its reason (-ra lists them). Every Linux-only call the
# profile refused, in pytest or in any process the tests started, is listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="$PWD/tests/macos_profile"
# FSEvents: the double of watchdog's C extension, live (fed from this machine's inotify as the
# FSEvents batches macOS reports), found by watchdog's `import _watchdog_fsevents`; watchd's
# native_observer then runs watchdog's real FSEventsEmitter, as on a Mac
fsevents="$PWD/tests/helpers/fsevents_double"
refusals="$(mktemp -t watchd-macos-lane-refusals.XXXXXX)"  # outside the repository
trap 'rm -f "$refusals"' EXIT
export MACOS_PROFILE_REFUSALS="$refusals"
export PYTHONPATH="$profile:$fsevents${PYTHONPATH:+:$PYTHONPATH}"

status=0
.venv/bin/pytest "$@" || status=$?

if [ -s "$refusals" ]; then
    echo
    echo "macOS profile: Linux-only calls refused (count, call, innermost caller):"
    # "PID macOS profile: open '/proc/123/stat': Linux-only (...), called from A:1 <- B:2"
    cut -d' ' -f2- "$refusals" |
        sed -e 's#/proc/[0-9][0-9]*#/proc/PID#g' -e 's/ (a Mac has no such thing)//' -e 's/ <- .*//' |
        sort | uniq -c | sort -rn
    # a refusal is a failure even where no test noticed it (a thread of a watchd process died quietly)
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
