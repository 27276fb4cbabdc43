# Shell language basics: pipes, redirections, subshells, command
# substitution, loops, case, functions, arithmetic, test, here-documents,
# read.  Usage: sh battery_basic.sh WORKDIR   (data: ${T_DATA:-/t/data})
W=${1:?usage: battery_basic.sh WORKDIR}
D=${T_DATA:-/t/data}
case $D in /*) ;; *) D=$(pwd)/$D ;; esac
export LC_ALL=C
umask 022
cd "$W" || exit 1
rm -rf bt_basic && mkdir bt_basic && cd bt_basic || exit 1

echo "== pipes"
echo hello | cat
printf 'b\na\nc\n' | sort | head -n 2
echo one two three | tr ' ' '\n' | wc -l
false | true; echo "status of false|true: $?"
true | false; echo "status of true|false: $?"
! false; echo "negated false: $?"

echo "== redirections"
echo first > out.txt
echo second >> out.txt
cat < out.txt
{ echo "order: 1>&2 2>/dev/null still reaches old stderr" 1>&2 2>/dev/null; } 2> order.txt
cat order.txt
{ echo out; echo err >&2; } > both.txt 2>&1
sort both.txt
{ echo out; echo err >&2; } 2> err-only.txt > /dev/null
cat err-only.txt
ls nonexistent-file 2>/dev/null; echo "ls missing status nonzero: $([ $? -ne 0 ] && echo yes)"
exec 3> fd3.txt
echo "via fd 3" >&3
exec 3>&-
cat fd3.txt
exec 4< out.txt
read -r line <&4
exec 4<&-
echo "read from fd 4: $line"
: > empty.txt; wc -c < empty.txt
echo "noclobber:"; (set -C; echo x > out.txt) 2>/dev/null || echo "  refused"

echo "== subshells and command substitution"
x=outer
(x=inner; echo "in subshell: $x")
echo "after subshell: $x"
y=$(echo nested $(echo deep))
echo "$y"
n=$(wc -l < "$D/words")
echo "words lines: $n"
echo "backticks: `echo old style`"
(exit 7); echo "subshell exit: $?"
z=$( (echo a; echo b) | wc -l ); echo "grouped lines: $z"
echo "trailing newlines stripped: [$(printf 'x\n\n\n')]"

echo "== loops"
for i in 1 2 3; do printf '%s ' "$i"; done; echo
for w in $(head -n 5 "$D/words"); do printf '<%s>' "$w"; done; echo
i=0; while [ $i -lt 5 ]; do i=$((i + 1)); done; echo "while: $i"
i=0; until [ $i -ge 3 ]; do i=$((i + 1)); done; echo "until: $i"
for i in 1 2 3 4 5 6; do
    [ $i -eq 2 ] && continue
    [ $i -eq 5 ] && break
    printf '%s ' $i
done; echo
set -- a "b c" d
echo "args: $#"; for a in "$@"; do echo "  [$a]"; done
for a in $*; do printf '(%s)' "$a"; done; echo

echo "== case"
for f in foo.c bar.h baz README x.tar.gz; do
    case $f in
        *.c) echo "$f: C source" ;;
        *.h) echo "$f: header" ;;
        *.tar.*|*.tgz) echo "$f: tarball" ;;
        [A-Z]*) echo "$f: capitalised" ;;
        *) echo "$f: other" ;;
    esac
done

echo "== functions"
greet() { echo "hello, $1 ($#)"; return 3; }
greet world extra; echo "return: $?"
fact() { if [ "$1" -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }
echo "fact 10 = $(fact 10)"
counter=0
bump() { counter=$((counter + 1)); }
bump; bump; bump; echo "counter: $counter"
scoped() { local counter=100; echo "local: $counter"; }
scoped; echo "global: $counter"

echo "== arithmetic"
echo $((1 + 2 * 3)) $(( (1 + 2) * 3 )) $((17 / 5)) $((17 % 5)) $((-7 / 2))
echo $((1 << 10)) $((0xff)) $((010)) $((5 > 3)) $((5 == 3)) $((3 ? 10 : 20))
a=5; a=$((a * a)); echo "a=$a"; b=$((a += 5)); echo "b=$b a=$a"
echo $((2147483647 + 1)) $((9223372036854775807))

echo "== test"
for e in "-n abc" "-z abc" "1 -lt 2" "2 -lt 1" "abc = abc" "abc != abc" "-d ." "-f ." "-e out.txt"; do
    if [ $e ]; then r=true; else r=false; fi
    echo "[ $e ] -> $r"
done
[ -s empty.txt ] || echo "empty.txt is empty"
[ -r out.txt ] && [ -w out.txt ] && echo "out.txt readable and writable"
test 3 -gt 2 -a 1 -eq 1 && echo "test -a ok"
[ "$(cat out.txt | head -n 1)" = first ] && echo "string compare ok"

echo "== here-documents"
name=World
cat <<EOF
Hello, $name!
Sum: $((2 + 3))
EOF
cat <<'EOF'
Literal: $name $((2 + 3))
EOF
cat <<-EOF
	tabs stripped for $name
	EOF
tr a-z A-Z <<EOF
shout this
EOF
while read -r k v; do echo "$v=$k"; done <<EOF
one 1
two 2
EOF

echo "== read"
echo "a b c d" | { read -r x y z; echo "x=$x y=$y z=$z"; }
printf 'k1:v1\nk2:v2\n' | while IFS=: read -r k v; do echo "$k -> $v"; done
head -n 3 "$D/table.csv" | while IFS=, read -r id name color qty; do echo "$name/$color"; done
count=0; while read -r l; do count=$((count + 1)); done < "$D/words"; echo "read lines: $count"

echo "== variables"
unset u; echo "default: ${u:-dflt} ${u-dash}"
v=value; echo "alt: ${v:+set} len: ${#v}"
p=/usr/local/bin/prog.tar.gz
echo "${p##*/} ${p%/*} ${p%%.*} ${p#*.}"
: ${assigned:=now}; echo "assigned: $assigned"
IFS=: ; set -- $(echo "a:b:c"); IFS=' '; echo "split: $# $2"
echo "special: $# ${0##*/}"

echo "done"
