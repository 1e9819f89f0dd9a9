#!/usr/bin/env bash
# The README's tour, as one run: prints docs/tour.md (markdown) with the real
# output of every command, played with shequctl against a fresh system.
#
#   deploy/local/tour.sh                 prints the tour on stdout
#   deploy/local/tour.sh --check FILE    plays it and compares what it printed
#                                        with FILE, ids and times aside (they
#                                        differ run by run); exit 1 and a diff
#                                        when they differ
#
# `make tour` writes docs/tour.md against a `make run` on an empty data
# directory; a test (tests/tests/system.rs) runs --check against a system of
# its own, so the tour cannot drift from what the services print. The
# services are found as shequctl finds them (SHEQU_COMPLAINTS_URL and the
# rest, default `make run`'s ports), the token at SHEQU_TOKEN_FILE (default
# data/auth/operator.token), NATS at SHEQU_NATS_URL (default `make run`'s).
# It refuses a system that already holds complaints: the tour's lists and
# figures are those of a fresh district.
set -Eeuo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=deploy/local/common.sh
. deploy/local/common.sh

check=
case ${1:-} in
  --check) check=${2:?--check needs the file to compare with} ;;
  "") ;;
  *) echo "usage: $0 [--check FILE]" >&2; exit 2 ;;
esac

data=${SHEQU_DATA_DIR:-$root/data}
export SHEQU_TOKEN_FILE=${SHEQU_TOKEN_FILE:-$data/auth/operator.token}
export SHEQU_NATS_URL=${SHEQU_NATS_URL:-nats://127.0.0.1:14222}
if ! command -v shequctl >/dev/null 2>&1; then
  bin_dir=$(debug_bin_dir) || bin_dir=$root/target/debug
  export PATH="$bin_dir:$PATH"
fi
command -v shequctl >/dev/null 2>&1 || { echo "tour: shequctl not found: \`make run\` builds it" >&2; exit 1; }
if [ -n "$(shequctl --json complaints list 2>&1 | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)" ] ||
  ! shequctl complaints list >/dev/null 2>&1; then
  echo "tour: the system is not up, or not fresh (it holds complaints); start \`make run\` on an empty data directory (SHEQU_DATA_DIR=\$(mktemp -d) make run)" >&2
  exit 1
fi

# --- printing --------------------------------------------------------------------
out=$(mktemp)
trap 'rm -f "$out"' EXIT
trap 'echo "tour: a command failed (exit $?); the tour so far is above" >&2; cat "$out" >&2' ERR
exec 3>&1 1>"$out"

prose() { cat; echo; }   # a paragraph (markdown) from stdin
open_console() { echo '```console'; }
close_console() { echo '```'; echo; }
# run: prints the command on stdin as typed (`$ ` first), runs it, prints its output.
run() {
  local cmd
  cmd=$(cat)
  printf '$ %s\n' "$cmd"
  eval "$cmd" 2>&1
}
# refused: as run, for a command that must fail (bad input).
refused() {
  local cmd
  cmd=$(cat)
  printf '$ %s\n' "$cmd"
  if eval "$cmd" 2>&1; then
    echo "tour: expected a refusal: $cmd" >&2
    return 1
  fi
}
# run_keep VAR: as run, and VAR takes the id the output's first `id` row shows.
run_keep() {
  local var=$1 cmd output
  cmd=$(cat)
  printf '$ %s\n' "$cmd"
  output=$(eval "$cmd" 2>&1)
  printf '%s\n' "$output"
  printf -v "$var" '%s' "$(sed -n 's/^id  *\([0-9a-f-]\{36\}\)$/\1/p' <<<"$output" | head -1)"
  [ -n "${!var}" ] || { echo "tour: no id in the output of: $cmd" >&2; return 1; }
}
# assign VAR...: shows `$ VAR=value …` as a reader would type it.
assign() {
  local line=
  for var in "$@"; do line+=" $var=${!var}"; done
  printf '$%s\n' "$line"
}
# until_shown SECONDS COMMAND PATTERN: waits (printing nothing) until COMMAND's
# output holds PATTERN, as an outcome carried by an event arrives.
until_shown() {
  local deadline=$((SECONDS + $1))
  until eval "$2" 2>/dev/null | grep -q -- "$3"; do
    ((SECONDS < deadline)) || { echo "tour: waited $1 s for '$3' in: $2" >&2; return 1; }
    sleep 0.2
  done
}
# The district's tomorrow (UTC+8), for a booking to come.
tomorrow=$(date -u -d "@$(($(date +%s) + 8 * 3600 + 86400))" +%Y-%m-%d)

# --- the tour --------------------------------------------------------------------
prose <<'TXT'
# A tour of shequ

This page is printed by `deploy/local/tour.sh` against a fresh `make run`
(`make tour` writes it again); a test plays the script against a live system
and compares what it prints with this page, ids and times aside, so every
output below is what the commands print today. Ids and times differ from one
run to the next.

Start the system with `make run` and, in another terminal, paste the three
`export` lines its banner prints (`PATH` to the built `shequctl`, the operator
token `make run` made, and its NATS). Every command has `--help`, and `--json`
prints JSON for scripts. Every call needs a bearer token whose role may make it
(operator, staff, service, resident_app); without one, or with one whose role
may not, `shequctl` exits 7 ([configuration.md](configuration.md) has the
rest: tokens, actors, request ids).
TXT

prose <<'TXT'
## Complaints

Load the grid organisation, which is data, not code:
TXT
open_console
run <<'CMD'
shequctl org load deploy/organisation.example.json
CMD
close_console

prose <<'TXT'
Submit a complaint by hotline without a category: the classifier reads it (the
words that decided are named), and its grid's worker gets it with the time
limits of its class:
TXT
open_console
run_keep ID <<'CMD'
shequctl complaints submit --channel hotline --grid xinyuan-1 \
    --text "3号楼下的垃圾三天没人清运了" --reporter-name 张三 --reporter-phone 13812345678 \
    --request-id tour-1
CMD
close_console

prose <<'TXT'
The same `--request-id` again returns the same complaint and changes nothing. A
building picks its grid:
TXT
open_console
run <<'CMD'
shequctl complaints submit --channel mini_program --building yaozhai-b1 \
    --text "楼道里有人飞线给电动车充电" --priority urgent
CMD
close_console

prose <<'TXT'
Work the first one through to its follow-up visit, then read it with its
history (copy the id from the first table):
TXT
open_console
assign ID
run <<'CMD'
shequctl complaints accept $ID
CMD
run <<'CMD'
shequctl complaints resolve $ID --note "已联系环卫清运"
CMD
run <<'CMD'
shequctl complaints follow-up $ID --satisfaction 5
CMD
run <<'CMD'
shequctl complaints show $ID
CMD
close_console

prose <<'TXT'
Each entry's actor is the account of the token that made the change
(`local-operator` is the operator token `make run` made), not what a request
says: a request's own `--actor` counts only on a service with authentication
disabled. Each follow-up visit keeps its score on the entry it closed or
reopened.

List, and the district's figures for a community (the last 30 days by
default):
TXT
open_console
run <<'CMD'
shequctl complaints list
CMD
run <<'CMD'
shequctl complaints figures --community xinyuan
CMD
close_console

prose <<'TXT'
Bad input is refused with the field named, and nothing changes (exit code 4;
3 = service unreachable, 5 = not found, 6 = not allowed in this state, 7 = no
token or a role that may not):
TXT
open_console
refused <<'CMD'
shequctl complaints follow-up $ID --satisfaction 9
CMD
close_console

prose <<'TXT'
## The merchant alliance

Register two dining merchants with the coordinates a map app gives (GCJ-02 by
default; `--datum wgs84` for GPS), one offering elder meals round the clock:
TXT
open_console
run_keep M <<'CMD'
shequctl merchants register --name "幸福助老食堂" --category dining --tag elder_meals \
    --lat 34.7810 --lng 113.6880 --grid xililu-1 --hours "daily 00:00-24:00" \
    --party-member-owner --request-id tour-canteen
CMD
run <<'CMD'
shequctl merchants register --name "老王面馆" --category dining --lat 34.7795 --lng 113.6902 \
    --grid xililu-1 --hours "mon-sat 10:00-21:30" --request-id tour-noodles
CMD
close_console

prose <<'TXT'
The 15-minute convenience circle around a resident (15 minutes at 80 m/min),
nearest first; then only those offering elder meals and open now:
TXT
open_console
run <<'CMD'
shequctl merchants nearby --lat 34.7800 --lng 113.6890 --category dining
CMD
run <<'CMD'
shequctl merchants nearby --lat 34.7800 --lng 113.6890 --category dining --tag elder_meals --open-now
CMD
close_console

prose <<'TXT'
The alliance serves the district only. A merchant's place and a search's point
must lie in the service area (`SHEQU_SERVICE_AREA`; by default Jinshui
District's box, latitude 34.74–34.90 and longitude 113.58–113.80 in WGS-84),
judged after a GCJ-02 point is converted; one outside is refused with
`InvalidArgument` naming `details.location` or `point`, before any database
work. That bounds every search: the service starts only when an hour's walk
(the longest `FindNearby` takes) about any point of the area stays clear of the
poles and the ±180° meridian and needs at most 512 index cells.

A complaint about the canteen, resolved with the merchant found at fault,
lowers its credit score once (merchant-alliance learns it from the complaint's
event); the ledger says why and which event caused it:
TXT
open_console
assign M
run_keep C <<'CMD'
shequctl complaints submit --channel hotline --grid xililu-1 --merchant $M \
    --text "食堂饭菜分量不足，价格不透明"
CMD
assign C
run <<'CMD'
shequctl complaints accept $C
CMD
run <<'CMD'
shequctl complaints resolve $C --note "已约谈商户并整改" --merchant-at-fault
CMD
until_shown 30 "shequctl merchants ledger $M" complaint_at_fault
run <<'CMD'
shequctl merchants ledger $M
CMD
close_console

prose <<'TXT'
`shequctl merchants activity $M --kind welfare --description "为独居老人送餐"`
raises it again, and `shequctl merchants evaluate --period 2026-Q4` says who
qualifies as a model merchant and why not (`--award` records and publishes the
awards).

## Pensioner care

Register an elder (personal data, shown to staff only; the risk and the visit
interval follow from the stated rules) and a party-member volunteer, and pair
them (a volunteer takes at most two elders):
TXT
open_console
run_keep E <<'CMD'
shequctl care elders register --name 李秀英 --birth-date 1941-05-20 --gender female --grid tongxin-1 \
    --address "通信花园3号楼401" --lat 34.7800 --lng 113.6885 --living alone --chronic-illness \
    --health-notes 高血压 --contact "张伟,13612345678,儿子" --consent
CMD
run_keep V <<'CMD'
shequctl care volunteers register --name 王建国 --phone 13912345678 --grid tongxin-1 --party-member
CMD
assign E V
run <<'CMD'
shequctl care pair --volunteer $V --elder $E
CMD
close_console

prose <<'TXT'
A home visit that finds a concern is saved at once and files a complaint with
the complaints service through a retrying worker (it would wait, and file
exactly once, if that service were down); asking again with the same request id
shows the complaint it became:
TXT
open_console
run <<'CMD'
shequctl care visit --elder $E --visitor $V --kind home_visit --wellbeing concern \
    --need "屋顶漏水" --need "需要助餐" --notes "老人说晚上睡不好" --request-id visit-1
CMD
until_shown 30 "shequctl care visit --elder $E --visitor $V --kind home_visit --wellbeing concern --need 屋顶漏水 --need 需要助餐 --notes 老人说晚上睡不好 --request-id visit-1" '^complaint  '
run <<'CMD'
shequctl care visit --elder $E --visitor $V --kind home_visit --wellbeing concern \
    --need "屋顶漏水" --need "需要助餐" --notes "老人说晚上睡不好" --request-id visit-1 | tail -2
CMD
close_console

prose <<'TXT'
A service is booked for a time to come, at most 30 days ahead (otherwise
`InvalidArgument` naming `scheduled_for`). A meal booking asks merchant-alliance
for the dining merchants offering elder meals within the elder's 15-minute
circle and takes the nearest one open at the meal's time by its opening hours
(`no_merchant_open` when none is; `no_merchant_nearby` when there is none at
all). When the alliance cannot be asked the booking is stored as
`alliance_unavailable`, and a retry with the same request id searches again.
A booking then goes booked → served, cancelled or no-show, once (`shequctl care
settle BOOKING served|cancelled|no-show`; served from an hour before its time,
no-show from its time); the meal served credits its merchant as a welfare
activity (`elder_meal_discount +1` in its ledger), once per booking. A visit's
visitor is a registered volunteer's id, or, left out, the staff member
recording it, so no event carries a person's name. The elder's timeline
gathers it all, with the outcomes (resolved, closed, reopened) of the
complaints filed for the elder, which arrive from the complaint events:
TXT
open_console
run <<CMD
shequctl care book --elder \$E --service meal_assistance --at "$tomorrow 11:30"
CMD
until_shown 30 "shequctl care timeline $E" complaint_filed
run <<'CMD'
shequctl care timeline $E
CMD
run <<'CMD'
shequctl complaints list
CMD
close_console

prose <<'TXT'
## Events

Every step above was also published as an event (a CloudEvent) on the
`COMPLAINTS`, `ALLIANCE` and `CARE` streams; `shequctl events tail [PATTERN]`
follows them (`--from start`, a time, or now), leaving nothing on the server:
TXT
open_console
run <<'CMD'
shequctl events tail --from start --idle-exit 1 --json 'shequ.*.complaint.accepted.v1'
CMD
close_console

prose <<'TXT'
A consumer sets aside ("parks") an event that can never apply as it came;
`shequctl events parked --service NAME` lists them, and `shequctl events replay
--service NAME ID` applies one again once its cause is fixed. None here:
TXT
open_console
run <<'CMD'
shequctl events parked --service merchant-alliance
CMD
close_console

prose <<'TXT'
Ctrl-C in the first terminal stops the services (each flushes its outbox) and
then NATS; the next `make run` finds the same data. `make demo` plays a longer
day, with an escalation and overdue visits.
TXT

# --- the result ------------------------------------------------------------------
exec 1>&3 3>&-
if [ -z "$check" ]; then
  cat "$out"
  exit 0
fi
# Ids, instants and dates vary run by run; the rest must be as the file shows.
normalise() {
  sed -E -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<id>/g' \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?/<time>/g' "$1"
}
if diff -u --label "$check" --label "this run" <(normalise "$check") <(normalise "$out"); then
  echo "tour: what it printed is what $check shows (ids and times aside)"
else
  echo "tour: $check is not what the tour prints now: \`make tour\` writes it again (against a fresh \`make run\`)" >&2
  exit 1
fi
