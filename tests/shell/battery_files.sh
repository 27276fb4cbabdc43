# File manipulation: mkdir, cp -r, mv, ln -s, chmod, rm, ls -la (reduced to
# mode/size/name), find, test operators, md5sum, wc, dd, touch.
# Usage: sh battery_files.sh WORKDIR   (data: ${T_DATA:-/t/data})
W=${1:?usage: battery_files.sh WORKDIR}
D=${T_DATA:-/t/data}
case $D in /*) ;; *) D=$(pwd)/$D ;; esac
export LC_ALL=C
umask 022
cd "$W" || exit 1
rm -rf bt_files && mkdir bt_files && cd bt_files || exit 1

# ls -la without link counts, owners, dates and directory sizes.
lsl() {
    ls -la "$@" | awk '
        $1 == "total" { next }
        /^d/ { print $1, "-", $NF; next }
        /^l/ { print $1, $5, $(NF-2), $(NF-1), $NF; next }
        { print $1, $5, $NF }'
}

echo "== create"
mkdir -p top/a/b/c top/empty
echo alpha > top/a/one.txt
printf 'beta\nbeta\n' > top/a/b/two.txt
cp "$D/words" top/a/b/c/words
: > top/zero
touch top/touched
find . | sort
echo "dirs:"; find . -type d | sort
echo "files:"; find . -type f | sort
echo "name *.txt:"; find . -name '*.txt' | sort
echo "empty:"; find . -empty | sort

echo "== ls -la"
chmod 750 top/a
chmod 600 top/a/one.txt
chmod 4755 top/zero
chmod u=rwx,g=rx,o= top/touched
ln -s a/one.txt top/link
ln -s missing top/dangling
lsl top
lsl top/a
ls top | sort
ls -1 top/a/b

echo "== cp / mv / ln / rm"
cp -r top copy
find copy | sort
cmp top/a/b/c/words copy/a/b/c/words && echo "cp -r content identical"
[ -L copy/link ] && echo "cp -r kept symlink as symlink" || echo "cp -r followed symlink"
cp top/a/one.txt single && cat single
mv single renamed && [ ! -e single ] && cat renamed
mv renamed top/a/ && ls top/a | sort
mkdir moved && mv copy/a moved/ && find moved | sort
ln top/a/one.txt hard 2>/dev/null || cp top/a/one.txt hard
ln -s ../top/a/b/two.txt copy/rel
cat copy/rel
readlink copy/rel
ln -sf one.txt copy/rel && readlink copy/rel
rm -r moved && [ ! -d moved ] && echo "rm -r ok"
rm copy/zero && ls copy | sort
rm -f does-not-exist && echo "rm -f missing ok"
rm nothing-here 2>/dev/null || echo "rm missing fails"
rmdir top/empty && echo "rmdir ok"
rmdir top/a 2>/dev/null || echo "rmdir non-empty fails"

echo "== test operators"
for p in top top/a/one.txt top/link top/dangling top/zero nowhere; do
    r=""
    [ -e "$p" ] && r="${r}e"
    [ -f "$p" ] && r="${r}f"
    [ -d "$p" ] && r="${r}d"
    [ -L "$p" ] && r="${r}L"
    [ -s "$p" ] && r="${r}s"
    [ -x "$p" ] && r="${r}x"
    [ -u "$p" ] && r="${r}u"
    echo "$p: $r"
done
touch -d '2020-01-02 03:04:05' old && touch -d '2021-06-07 08:09:10' new
[ new -nt old ] && echo "new -nt old"
[ old -ot new ] && echo "old -ot new"
[ old -nt new ] || echo "old is not newer"
date -r old '+%Y-%m-%d %H:%M:%S' 2>/dev/null || echo "date -r unsupported"
rm old new

echo "== contents"
md5sum top/a/one.txt top/a/b/two.txt top/a/b/c/words
cat top/a/b/c/words | md5sum
wc -l top/a/b/c/words
wc -c < top/a/b/c/words
wc -w < "$D/lorem.txt"
wc "$D/hello.txt" | awk '{print $1, $2, $3}'
dd if="$D/words" of=chunk bs=16 count=4 2>/dev/null
wc -c < chunk
dd if="$D/words" bs=1 skip=10 count=20 2>/dev/null | od -c | head -n 2
head -c 100 /dev/zero | wc -c
printf 'abc' | od -An -tx1
cat "$D/hello.txt" "$D/hello.txt" > twice; wc -l < twice
stat -c '%s %a %F' twice
stat -c '%a %F' top/a top/link
stat -L -c '%a %F' top/link
du -s top >/dev/null 2>&1 && echo "du ran"

echo "== chmod modes"
: > m
for mode in 644 600 755 700 444 1777 2755; do
    chmod $mode m
    lsl m
done
chmod a-w m; lsl m
chmod u+w,go-rwx m; lsl m

echo "== cd and pwd"
cd top/a/b
echo "pwd tail: ${PWD##*/bt_files}"
cd ../..
echo "pwd tail: $(pwd | sed 's|.*/bt_files||')"
cd - >/dev/null; echo "cd - tail: ${PWD##*/bt_files}"
cd "$W/bt_files"

echo "done"
