#!/bin/sh
# Fetches refs/speakap-sync/state (the audit trail and ledger) from the remote before a run, and
# pushes it back after an apply. Shared by the GitHub action and the GitLab template.
#
#   ci/state-ref.sh fetch CONFIG_DIR [REMOTE]
#   ci/state-ref.sh push CONFIG_DIR [REMOTE]
#
# fetch: a ref the remote does not have (a first apply) is told apart from a remote that does not
# answer, which fails: applying without a record that exists would forget manual deletions.
# Records made here and not pushed yet (a reused runner) are kept, replayed on top.
# push: records a journal an apply could not commit, then pushes; when another machine pushed
# first, fetches its ref, rebases onto it (`audit --rebase-onto`) and pushes again, 5 times.
set -eu

ref=refs/speakap-sync/state
command=${1:?usage: $0 fetch|push CONFIG_DIR [REMOTE]}
config_dir=${2:?usage: $0 fetch|push CONFIG_DIR [REMOTE]}
remote=${3:-origin}

fail() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::error::$1"
  else
    echo "error: $1" >&2
  fi
  exit 1
}

fetch_and_rebase() {
  git fetch --no-tags "$remote" "+$ref:refs/speakap-sync/upstream"
  speakap-sync audit --repo "$config_dir" --rebase-onto refs/speakap-sync/upstream >/dev/null
}

case "$command" in
  fetch)
    status=0
    git ls-remote --exit-code "$remote" "$ref" >/dev/null || status=$?
    if [ "$status" = 2 ]; then
      echo "$ref does not exist on $remote: no apply is recorded there yet"
    elif [ "$status" != 0 ]; then
      fail "cannot read $ref from $remote (git ls-remote exited $status)"
    else
      fetch_and_rebase
    fi
    ;;
  push)
    speakap-sync audit --repo "$config_dir" >/dev/null
    if ! git rev-parse -q --verify "$ref" >/dev/null; then
      exit 0
    fi
    for attempt in 1 2 3 4 5; do
      if git push "$remote" "$ref:$ref"; then
        exit 0
      fi
      echo "push of $ref rejected (attempt $attempt); rebasing onto $remote's"
      sleep "$attempt"
      fetch_and_rebase
    done
    fail "$ref could not be pushed after 5 attempts; the record is kept in this repository"
    ;;
  *)
    fail "unknown command $command (fetch or push)"
    ;;
esac
