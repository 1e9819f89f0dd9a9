#!/usr/bin/env bash
# `make demo`: a scripted day in the district, played with shequctl against the
# system `make run` started (run that first, in another terminal). Prints every
# command before its output. Takes about a minute, most of it waiting for the
# sweeper to escalate an unanswered urgent complaint: `make run` gives
# municipal_facilities × urgent a 1-minute response limit
# (deploy/local/time-limits.json) and sweeps every 5 s.
#
# Re-runnable against the same data: every run makes its own complaints, elders,
# volunteers and visits (fresh request ids), while the three alliance merchants
# keep stable request ids, so a second run finds them registered (and their
# credit ledgers grow run by run). Ids come from `shequctl --json` output,
# read with sed (no jq needed).
set -Eeuo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=deploy/local/common.sh
. deploy/local/common.sh

# The shequctl cargo built (CARGO_TARGET_DIR honoured), or the one on PATH.
bin_dir=$(debug_bin_dir) || bin_dir=$root/target/debug
shequctl_bin=$bin_dir/shequctl
if [ ! -x "$shequctl_bin" ] && command -v shequctl >/dev/null 2>&1; then
  shequctl_bin=$(command -v shequctl)
fi
run_tag=$(date +%Y%m%d-%H%M%S)
started=$SECONDS
step=starting

die() {
  echo "demo: failed at step \"$step\": $*" >&2
  exit 1
}
trap 'echo "demo: failed at step \"$step\" (exit code $?; shequctl --help explains its codes); see the output above" >&2' ERR

# --- the system must be up -------------------------------------------------------
[ -x "$shequctl_bin" ] || die "$shequctl_bin is missing: start the system with \`make run\` (it builds it)"
step="checking that shequ is running"
not_ready=()
for service in "${SHEQU_LOCAL_SERVICES[@]}"; do
  read -r name _grpc admin <<<"$service"
  status=$(http_status "$admin" /readyz)
  if [ "$status" != 200 ]; then
    not_ready+=("$name (http://127.0.0.1:$admin/readyz: ${status:-no answer})")
  fi
done
if ((${#not_ready[@]})); then
  printf -v list '\n  %s' "${not_ready[@]}"
  die "not ready:$list
start the system with \`make run\` in another terminal, wait for its banner, then run \`make demo\` again"
fi
export SHEQU_COMPLAINTS_URL=http://127.0.0.1:50051
export SHEQU_ALLIANCE_URL=http://127.0.0.1:50052
export SHEQU_CARE_URL=http://127.0.0.1:50053
# The operator's token `make run` made (it keeps tokens with the data).
export SHEQU_TOKEN_FILE=${SHEQU_TOKEN_FILE:-${SHEQU_DATA_DIR:-$root/data}/auth/operator.token}
[ -r "$SHEQU_TOKEN_FILE" ] || die "no token at $SHEQU_TOKEN_FILE: start the system with \`make run\` (it makes the tokens)"

# --- helpers ---------------------------------------------------------------------
# The command as a person would type it: arguments with spaces or shell
# characters in double quotes.
show_command() {
  local line=shequctl arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
      line+=" $arg"
    else
      line+=" \"$arg\""
    fi
  done
  printf '$ %s\n' "$line"
}

# sq ARGS…: prints the command, runs it, prints its output.
sq() {
  show_command "$@"
  "$shequctl_bin" "$@"
}

# sq_json ARGS…: runs `shequctl --json ARGS…` quietly, output into $json.
sq_json() {
  json=$("$shequctl_bin" --json "$@")
}

# json_get KEY [INDENT]: the first "KEY": value in $json, optionally only at INDENT
# spaces; strings without their quotes. shequctl --json pretty-prints, one key a
# line, two spaces a level: {"complaint": {"id": …}} puts the id at four.
json_get() {
  local indent=${2:-' *'}
  sed -n "s/^${indent}\"$1\": //; T; s/,\$//; s/^\"//; s/\"\$//; p; q" <<<"$json"
}

# capture VAR WHAT ARGS…: prints `shequctl --json ARGS…`, runs it, and sets VAR
# to the id of the entity it returns (WHAT: its top-level key, e.g. complaint).
capture() {
  local var=$1 what=$2
  shift 2
  show_command --json "$@"
  sq_json "$@"
  local id duplicate
  id=$(json_get id '    ')
  [ -n "$id" ] || die "no $what id in the output of shequctl --json $*"
  duplicate=$(json_get duplicate '  ')
  printf -v "$var" '%s' "$id"
  if [ "$duplicate" = true ]; then
    echo "→ $var=$id   ($what.id; duplicate: this request id was seen before, nothing changed)"
  else
    echo "→ $var=$id   ($what.id)"
  fi
}

# poll SECONDS WHAT COMMAND…: runs COMMAND every second until it succeeds.
poll() {
  local seconds=$1 what=$2 start=$SECONDS
  shift 2
  until "$@"; do
    if ((SECONDS - start >= seconds)); then
      die "gave up after ${seconds}s waiting for $what"
    fi
    sleep 1
  done
  if ((SECONDS - start < 1)); then
    echo "→ there within a second"
  else
    echo "→ there after $((SECONDS - start))s"
  fi
}

section() {
  step=$1
  printf '\n=== %s\n' "$1"
}

district_time() { # date(1) -d argument → "YYYY-MM-DD HH:MM" in district time
  # UTC+8 without daylight saving, spelled so that it needs no tzdata.
  TZ=CST-8 date -d "$1" '+%Y-%m-%d %H:%M'
}

echo "shequ demo, run $run_tag: a day in Jinshui District"

# --- 1. the grid organisation ------------------------------------------------------
section "1. the grid organisation is loaded"
sq org load deploy/organisation.example.json

# --- 2. merchants --------------------------------------------------------------------
section "2. merchants join the alliance (stable request ids: a second run finds them)"
capture M_CANTEEN merchant merchants register --name 幸福助老食堂 --category dining --tag elder_meals \
  --lat 34.7810 --lng 113.6880 --grid xililu-1 --hours "daily 00:00-24:00" --party-member-owner \
  --actor operator-1 --request-id demo-merchant-canteen-24h
capture M_NOODLES merchant merchants register --name 老王面馆 --category dining \
  --lat 34.7795 --lng 113.6902 --grid xililu-1 --hours "mon-sat 10:00-21:30" \
  --actor operator-1 --request-id demo-merchant-noodles
capture M_REPAIR merchant merchants register --name 张师傅便民维修 --category repair --tag home_repair \
  --lat 34.7806 --lng 113.6871 --grid xililu-1 --hours "daily 08:00-18:00" --party-member-owner \
  --actor operator-1 --request-id demo-merchant-repair
sq merchants nearby --lat 34.7800 --lng 113.6890 --category dining
sq merchants nearby --lat 34.7800 --lng 113.6890 --category repair --tag home_repair
echo "# where the organisation's buildings stand, for the circle's coverage per grid (a load replaces them all)"
sq merchants load-buildings deploy/buildings.example.json
echo "# per grid, gaps first: which basic services have an active merchant within 15 minutes of every building"
sq merchants coverage
sq merchants coverage --grid xililu-1 --buildings

# --- 3. elders and volunteers ----------------------------------------------------------
section "3. elders and volunteers are registered and paired"
capture E_LI elder care elders register --name 李秀英 --birth-date 1941-05-20 --gender female \
  --grid tongxin-1 --address "通信花园3号楼401" --lat 34.7800 --lng 113.6885 --living alone \
  --chronic-illness --health-notes 高血压 --contact "张伟,13612345678,儿子" --consent --actor staff-1
capture E_SUN elder care elders register --name 孙淑珍 --birth-date 1940-07-03 --gender female \
  --grid tongxin-1 --address "通信花园5号楼102" --living alone --consent --actor staff-1
capture V_WANG volunteer care volunteers register --name 王建国 --phone 13912345678 --grid tongxin-1 \
  --party-member --actor staff-1
sq care elders show "$E_LI"
sq care pair --volunteer "$V_WANG" --elder "$E_LI" --actor staff-1
sq care pair --volunteer "$V_WANG" --elder "$E_SUN" --actor staff-1
# The paper log of the community hall: a phone call to 孙淑珍 twenty days ago,
# entered only now. Living alone at 86 she is to be visited weekly, so she is
# overdue (step 9).
sq care visit --elder "$E_SUN" --visitor "$V_WANG" --kind phone_call --wellbeing good \
  --at "$(district_time '20 days ago')" --notes "纸质台账补录"
echo "# a home visit recorded on the volunteer's phone 1 km from 李秀英's home: kept as a distance, flagged"
sq care visit --elder "$E_LI" --visitor "$V_WANG" --kind home_visit --wellbeing good \
  --lat 34.7890 --lng 113.6885 --notes "在社区活动中心见到老人" --request-id "demo-$run_tag-visit-far"

# --- 4. complaints from several channels ---------------------------------------------
section "4. complaints come in from several channels"
capture C_HOTLINE complaint complaints submit --channel hotline --grid xinyuan-1 \
  --text "3号楼下的垃圾三天没人清运了" --reporter-name 张三 --reporter-phone 13812345678 \
  --request-id "demo-$run_tag-hotline"
echo "# the hotline retries with the same request id: the same complaint, nothing new"
capture C_RETRY complaint complaints submit --channel hotline --grid xinyuan-1 \
  --text "3号楼下的垃圾三天没人清运了" --reporter-name 张三 --reporter-phone 13812345678 \
  --request-id "demo-$run_tag-hotline"
[ "$C_RETRY" = "$C_HOTLINE" ] || die "the retried submission made a new complaint ($C_RETRY, not $C_HOTLINE)"
capture C_MINI complaint complaints submit --channel mini_program --building yaozhai-b1 \
  --text "楼上邻居每天半夜装修，噪音太大" --request-id "demo-$run_tag-mini"
capture C_WALKIN complaint complaints submit --channel walk_in --grid xinyuan-2 \
  --text "小区门口路灯不亮一个星期了" --reporter-name 刘芳 --request-id "demo-$run_tag-walkin"
echo "# an urgent one, left unanswered: municipal_facilities × urgent has a 1-minute response limit here"
capture C_URGENT complaint complaints submit --channel grid_worker --grid yaozhai-2 \
  --text "5号楼前井盖丢失，夜里有人差点掉下去" --priority urgent --request-id "demo-$run_tag-urgent"
sq complaints show "$C_URGENT"
sq complaints list --page-size 5

# --- 5. a complaint about a merchant, resolved at fault --------------------------------
section "5. a complaint about a merchant is resolved at fault; its credit score drops"
capture C_MERCHANT complaint complaints submit --channel mini_program --grid xililu-1 \
  --merchant "$M_NOODLES" --text "面馆占道经营，桌子摆到人行道上" --request-id "demo-$run_tag-merchant"
sq complaints accept "$C_MERCHANT" --actor worker-wang
sq complaints resolve "$C_MERCHANT" --actor worker-wang --note "已约谈商户，桌椅收回店内" --merchant-at-fault
echo "# merchant-alliance learns it from the complaint's resolved event; waiting for the ledger entry…"
ledger_has() { # merchant reference
  sq_json merchants ledger "$1"
  grep -q "\"reference\": \"$2\"" <<<"$json"
}
poll 30 "the at-fault deduction in the ledger of $M_NOODLES" ledger_has "$M_NOODLES" "$C_MERCHANT"
sq merchants ledger "$M_NOODLES"

# --- 6. a concern visit becomes a complaint -----------------------------------------
section "6. a home visit finds a concern; it becomes a complaint"
capture VISIT visit care visit --elder "$E_LI" --visitor "$V_WANG" --kind home_visit \
  --wellbeing concern --need 屋顶漏水 --need 需要助餐 --notes "老人说晚上睡不好" \
  --request-id "demo-$run_tag-visit"
echo "# the filing worker files it with the complaints service; waiting for it in the elder's timeline…"
filed_complaint() {
  sq_json care timeline "$E_LI"
  C_FILED=$(sed -n '/"kind": "complaint_filed"/{n; s/^ *"reference": "\([^"]*\)".*/\1/p; q}' <<<"$json")
  [ -n "$C_FILED" ]
}
poll 30 "the complaint filed from visit $VISIT" filed_complaint
echo "→ C_FILED=$C_FILED"
sq care timeline "$E_LI"
sq complaints show "$C_FILED"

# --- 7. a meal booking -------------------------------------------------------------
section "7. a meal is booked with the nearest open elder-meals merchant; served, it is credited"
echo "# (the canteen here is open round the clock, so the demo books a meal half an hour from now)"
capture BOOKING booking care book --elder "$E_LI" --service meal_assistance \
  --at "$(district_time '30 minutes')" --actor staff-1
json_merchant=$(json_get merchant_id)
json_merchant_name=$(json_get merchant_name)
[ -n "$json_merchant" ] || die "the meal booking found no merchant: $(json_get note)"
echo "→ booked with $json_merchant_name ($json_merchant), $(json_get distance_metres) m away"
echo "# booking credits nothing; the meal served does, once"
sq care settle "$BOOKING" served --actor staff-1
poll 30 "the elder-meal credit for booking $BOOKING" ledger_has "$json_merchant" "$BOOKING"
sq merchants ledger "$json_merchant"

# --- 8. the sweeper escalates the unanswered urgent complaint -------------------------
section "8. nobody answered the urgent complaint: the sweeper escalates it"
echo "# waiting (up to 3 minutes) until $C_URGENT leaves level grid_worker: its response limit is 1 minute, swept every 5 s…"
escalated() {
  sq_json complaints show "$C_URGENT"
  [ "$(json_get level '    ')" != grid_worker ]
}
poll 180 "the escalation of $C_URGENT" escalated
sq complaints show "$C_URGENT"

# --- 9. overdue visits ---------------------------------------------------------------
section "9. visits overdue"
echo "# pensioner-care's sweeper (every 5 s) raises one overdue event per missed week of 孙淑珍; waiting for them in her timeline…"
overdue_raised() {
  sq_json care timeline "$E_SUN"
  grep -q '"kind": "visit_overdue"' <<<"$json"
}
poll 30 "the overdue visits of $E_SUN" overdue_raised
sq care overdue
sq care timeline "$E_SUN"
echo "# a rainstorm warning: staff ask for a visit to 孙淑珍 within 24 hours (the 2022 guideline's rule after a major event)"
sq care request-visit --elder "$E_SUN" --note 暴雨预警 --actor staff-1 --request-id "demo-$run_tag-request"
sq care visit-requests

# --- 10. figures ---------------------------------------------------------------------
section "10. the district's figures"
sq complaints figures
echo "# the care figures of this month (docs/care-figures.md), for the district and for 通信花园社区"
sq care figures
sq care figures --community tongxin

step="done"
printf '\ndemo done in %ss. Metrics: http://127.0.0.1:9101/metrics (complaints), http://127.0.0.1:9102/metrics (merchant-alliance), http://127.0.0.1:9103/metrics (pensioner-care)\n' \
  "$((SECONDS - started))"
