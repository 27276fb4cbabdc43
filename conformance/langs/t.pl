use strict; use IO::Socket::INET; use POSIX ":sys_wait_h"; use File::Temp qw(tempdir); use IO::Select;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5, ReuseAddr => 1) or die;
my $port = $srv->sockport;
my $pid = fork(); if (!$pid) { my $c = IO::Socket::INET->new("127.0.0.1:$port") or die; print $c "hi\n"; my $l = <$c>; print "child got $l"; exit 3; }
my $c = $srv->accept; my $l = <$c>; print $c uc($l); close $c; waitpid($pid, 0); print "status ", $? >> 8, "\n";
pipe(my $r, my $w); if (!fork) { close $r; print $w "through pipe\n"; exit 0 } close $w; print scalar <$r>; wait;
my $d = tempdir(CLEANUP => 1); open my $f, '>', "$d/x" or die; print $f "a" x 100; close $f; print "size ", -s "$d/x", "\n";
local $SIG{ALRM} = sub { print "alarm\n" }; alarm 1; select(undef, undef, undef, 1.5);
my $s = IO::Select->new($srv); my @ready = $s->can_read(0.1); print "ready ", scalar(@ready), "\n";
print `echo backtick`; print "sys ", system("sh", "-c", "exit 4") >> 8, "\n";
print "done\n";
