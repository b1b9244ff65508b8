#!/usr/bin/env bash
# Usage: expect_error.sh REGEX COMMAND...
# Passes when COMMAND exits with status 1..125 (an error, not a crash or signal) and its
# stderr matches REGEX (extended regex, case-insensitive).
set -u
regex=$1
shift
err=$(mktemp)
"$@" >/dev/null 2>"$err"
rc=$?
msg=$(cat "$err")
rm -f "$err"
if [ "$rc" -eq 0 ]; then echo "FAIL: exit 0, expected an error. stderr: $msg"; exit 1; fi
if [ "$rc" -gt 125 ]; then echo "FAIL: crashed or killed (status $rc). stderr: $msg"; exit 1; fi
if ! printf '%s' "$msg" | grep -qiE -- "$regex"; then echo "FAIL: stderr does not match /$regex/: $msg"; exit 1; fi
echo "ok: status $rc: $(printf '%s' "$msg" | head -n 3)"
