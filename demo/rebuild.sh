#!/bin/sh
# Demo-mode rebuild, run by bloud-agent (rebuild.mode: command) instead of nixos-rebuild.
# bloud-agent sets BLOUD_AGENT_EXE, BLOUD_APPS_STATE, BLOUD_APPS_DIR and BLOUD_DATA_DIR; the
# demo-rebuild subcommand starts a demo app on the catalog port of every enabled app and stops
# the others. A rollback passes `--rollback <generation>` (the agent has already written that
# generation's app set). BLOUD_DEMO_STEP_MS sets the pause between simulated build steps (default 400).
set -eu
exec "${BLOUD_AGENT_EXE:?demo/rebuild.sh is run by bloud-agent, not by hand}" demo-rebuild "$@"
