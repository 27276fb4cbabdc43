# Text tools on the fixed data files: cat, head, tail, sort, uniq, wc, sed,
# awk, tr, cut, grep, xargs, paste, nl, rev, md5sum.
# Usage: sh battery_text.sh WORKDIR   (data: ${T_DATA:-/t/data})
W=${1:?usage: battery_text.sh WORKDIR}
D=${T_DATA:-/t/data}
case $D in /*) ;; *) D=$(pwd)/$D ;; esac
export LC_ALL=C
umask 022
cd "$W" || exit 1
rm -rf bt_text && mkdir bt_text && cd bt_text || exit 1

echo "== cat / head / tail"
cat "$D/hello.txt"
head -n 3 "$D/words"
tail -n 2 "$D/words"
tail -n +199 "$D/words"
head -n 12 "$D/lorem.txt" | tail -n 2
cat -n "$D/hello.txt"
head -c 11 "$D/lorem.txt"; echo

echo "== sort / uniq"
sort "$D/words" | uniq -c | sort -k1,1nr -k2 | head -n 5
sort -u "$D/words" | wc -l
sort -n "$D/numbers" | head -n 3
sort -rn "$D/numbers" | head -n 3
sort -t, -k4,4n -k1,1n "$D/table.csv" | head -n 4
sort "$D/words" | uniq -d | wc -l
sort "$D/words" | uniq -u | head -n 3
tail -n +2 "$D/table.csv" | cut -d, -f3 | sort | uniq -c

echo "== wc"
wc -l < "$D/words"
wc -w < "$D/lorem.txt"
wc -c < "$D/table.csv"
wc -L "$D/lorem.txt" | awk '{print $1}'
cat "$D/words" "$D/numbers" | wc -l

echo "== sed"
sed -n '1,3p' "$D/lorem.txt"
sed 's/dolor/DOLOR/g' "$D/lorem.txt" | grep -c DOLOR
sed -e '/^[a-m]/d' "$D/words" | head -n 4
sed -n '$=' "$D/words"
printf 'a=1\nb=2\n' | sed 's/\([a-z]\)=\([0-9]\)/\2:\1/'
echo "path/to/file.txt" | sed -e 's|/|_|g' -e 's/\.txt$//'
sed '2q' "$D/table.csv"
printf 'x\ny\nz\n' | sed '1!G;h;$!d'
cp "$D/hello.txt" inplace && sed -i 's/world/there/' inplace && cat inplace

echo "== awk"
awk -F, 'NR > 1 { q[$3] += $4 } END { for (c in q) print c, q[c] }' "$D/table.csv" | sort
awk -F, 'NR > 1 && $4 > 40 { print $1, $2 }' "$D/table.csv"
awk '{ n += NF } END { print NR, n }' "$D/lorem.txt"
awk 'length($0) > 5' "$D/words" | head -n 3
awk 'BEGIN { printf "%05.1f|%-6s|%x\n", 3.14159, "ab", 255 }'
awk '{ s += $1 } END { print s, s / NR }' "$D/numbers"
echo "a b c" | awk '{ print $NF, NF; $2 = "X"; print }'
awk 'BEGIN { s = "hello world"; print toupper(substr(s, 1, 5)), index(s, "wor"), split(s, parts, "o") }'
awk -v n=3 'NR % n == 0 { printf "%s ", $0 } END { print "" }' "$D/words" | wc -w

echo "== tr / cut / paste / rev"
tr 'a-z' 'A-Z' < "$D/hello.txt"
echo "hello   world" | tr -s ' '
echo "hello world" | tr -d 'lo'
tr -c 'a-z\n' '_' < "$D/hello.txt"
head -n 3 "$D/table.csv" | cut -d, -f2,4
echo "abcdefgh" | cut -c 2-4
echo "abcdefgh" | cut -c 6-
head -n 3 "$D/words" > w3
head -n 3 "$D/numbers" > n3
paste w3 n3
paste -d: -s w3
echo "stressed" | rev

echo "== grep"
grep -c '^ka' "$D/words"
grep -n 'dolor' "$D/lorem.txt" | head -n 3
grep -v '[aeiou]$' "$D/words" | wc -l
grep -E '^(ru|to)+$' "$D/words" | sort -u
grep -i 'LOREM' "$D/lorem.txt" | wc -l
grep -o 'ip[a-z]*' "$D/lorem.txt" | sort | uniq -c
grep -w 'in' "$D/lorem.txt" | wc -l
grep -q apple "$D/table.csv" && echo "grep -q found"
grep nomatchatall "$D/words"; echo "grep no match status: $?"
grep -l hello "$D/hello.txt" "$D/words" | sed 's|.*/||'
grep -F 'sa' "$D/words" | wc -l

echo "== xargs"
head -n 6 "$D/words" | xargs echo
head -n 6 "$D/words" | xargs -n 2 echo
printf 'f1\nf2\nf3\n' | xargs touch && ls f? | xargs echo
printf 'f1 f2\n' | xargs rm && ls | sort
seq 1 10 | xargs -n 3 | awk '{ print NF }' | tr '\n' ' '; echo
seq 5 | xargs -I{} echo "item {}" | tail -n 2

echo "== misc"
seq 3 | nl -ba
seq 2 2 10 | tr '\n' ','; echo
seq 10 | tac 2>/dev/null | head -n 2 || seq 10 | sort -rn | head -n 2
basename /a/b/c.txt .txt; dirname /a/b/c.txt
printf '%s-%d-%03d\n' x 5 7
expr 6 \* 7; expr length "hello"; expr "abc" : 'a\(.\)'
echo "The quick brown fox" | fold -w 8
md5sum "$D/words" "$D/numbers" "$D/table.csv" "$D/lorem.txt" | sed 's|  .*/|  |'

echo "done"
