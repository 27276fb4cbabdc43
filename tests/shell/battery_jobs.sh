# Processes: & and wait, exit statuses, kill, traps, nested shells, exec,
# eval, larger pipelines.  Output order never depends on scheduling.
# Usage: sh battery_jobs.sh WORKDIR   (data: ${T_DATA:-/t/data})
W=${1:?usage: battery_jobs.sh WORKDIR}
D=${T_DATA:-/t/data}
case $D in /*) ;; *) D=$(pwd)/$D ;; esac
export LC_ALL=C
umask 022
cd "$W" || exit 1
rm -rf bt_jobs && mkdir bt_jobs && cd bt_jobs || exit 1

echo "== background jobs and wait"
for i in 1 2 3 4; do
    ( n=0; while [ $n -lt $((i * 50)) ]; do n=$((n + 1)); done; echo "job $i counted $n" > job$i.out ) &
done
wait
cat job1.out job2.out job3.out job4.out
(sleep 0.1; exit 3) &
p1=$!
(exit 5) &
p2=$!
wait $p2; echo "wait p2: $?"
wait $p1; echo "wait p1: $?"
sleep 10 &
p3=$!
kill $p3
wait $p3 2>/dev/null; echo "wait killed (TERM): $?"
sleep 10 &
p4=$!
kill -9 $p4
wait $p4 2>/dev/null; echo "wait killed (KILL): $?"
{ sh -c 'kill -TERM $$'; } 2>/dev/null; echo "sh killed itself: $?"
true & wait $!; echo "wait true: $?"
false & wait $!; echo "wait false: $?"
echo "job in pipeline" | cat > piped.out &
wait
cat piped.out

echo "== exit statuses"
sh -c 'exit 42'; echo "sh -c exit 42: $?"
sh -c 'exit 256'; echo "sh -c exit 256: $?"
nonexistent_command_xyz 2>/dev/null; echo "not found: $?"
touch noexec; chmod 644 noexec
./noexec 2>/dev/null; echo "not executable: $?"
sh -c 'false && true'; echo "false && true: $?"
sh -c 'false || true'; echo "false || true: $?"
sh -c 'set -e; false; echo unreachable'; echo "set -e: $?"
(set -e; true; echo "set -e continues after true")
if sh -c 'exit 1'; then echo then; else echo "else branch: $?"; fi

echo "== traps"
sh -c 'trap "echo exit trap ran" EXIT; echo body'
sh -c 'trap "echo got USR1" USR1; kill -USR1 $$; echo after signal'
sh -c 'trap "echo got TERM; exit 9" TERM; kill $$; echo not reached'; echo "status: $?"
sh -c 'trap "" INT; kill -INT $$; echo ignored INT'
(trap 'echo subshell exit trap' EXIT; echo in subshell)

echo "== nested shells, exec, eval"
sh -c 'echo "level 1"; sh -c "echo level 2; sh -c \"echo level 3\""'
echo 'echo "from script file: $1 $2"' > script.sh
sh script.sh arg1 arg2
chmod +x script.sh
printf '#!/bin/sh\necho "shebang script: $0 $#"\n' > shebang.sh
chmod 755 shebang.sh
sh ./shebang.sh a b c
./shebang.sh d e
(exec echo "exec replaced subshell"; echo "not printed")
cmd='echo evaluated $((6 * 7))'
eval "$cmd"
var=name; eval "$var=dynamic"; echo "name=$name"
export EXPORTED=yes; sh -c 'echo "child sees EXPORTED=$EXPORTED"'
NOTEXP=no; sh -c 'echo "child sees NOTEXP=${NOTEXP:-unset}"'
T_ONE=prefix sh -c 'echo "per-command env: $T_ONE"'
echo "T_ONE after: ${T_ONE:-unset}"
env -i A=1 B=2 env | sort
type echo cd 2>/dev/null | head -n 2

echo "== larger pipelines"
seq 1 20000 | md5sum
seq 1 20000 | awk '{ s += $1 } END { print s }'
seq 1 5000 | sed 's/$/ line/' | grep -c line
cat "$D/words" "$D/words" "$D/words" | sort | uniq -c | sort -rn | head -n 3
yes abc | head -n 1000 | wc -c
dd if=/dev/zero bs=1024 count=256 2>/dev/null | wc -c
i=0; seq 1 300 | while read -r n; do i=$((i + n)); [ "$n" = 300 ] && echo "while-read sum: $i"; done
seq 1 100 > nums; s=0; while read -r n; do s=$((s + n)); done < nums; echo "redirected loop sum: $s"
{ seq 1 3; seq 4 6; } | tr '\n' ' '; echo
for i in 1 2 3; do echo $i; done | tac 2>/dev/null || echo "no tac"

echo "== misc processes"
sleep 0.05 && echo "slept"
time_out=$(timeout 1 sh -c 'echo quick' 2>/dev/null); echo "timeout: $time_out"
printf 'x\n' | (read -r a; echo "read in subshell: $a")
echo "nproc positive: $([ "$(nproc 2>/dev/null || echo 1)" -ge 1 ] && echo yes)"
echo "uname -s: $(uname -s)"
echo "id -u numeric: $(id -u | grep -c '^[0-9][0-9]*$')"

echo "== a fifo reader killed while opening"
mkfifo kfifo
cat kfifo > /dev/null & reader=$!
sleep 0.2; kill -9 $reader; wait $reader 2>/dev/null
( echo x > kfifo; echo "writer got through" ) & writer=$!
sleep 0.3
kill $writer 2>/dev/null && echo "writer still waits for a reader"
wait $writer 2>/dev/null; rm -f kfifo

echo "done"
