# A server here and a client in another process (a script of its own, as
# the distribution's test runs it): Connect, Write, Read, Disconnect, Close;
# then the same instance serves a second client.
use strict;
use warnings;
use Test::More;
BEGIN { require './t/helper.pl' }
use Win32::Pipe;

my $name = unique('roundtrip');
my $pipe = Win32::Pipe->new($name);
isa_ok($pipe, 'Win32::Pipe');
for my $round (1, 2) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        exec($^X, (map { "-I$_" } @INC), 't/02-roundtrip-client.pl', "\\\\.\\pipe\\$name") or POSIX::_exit(9);
    }
    ok($pid > 0, "round $round: the client runs");
    ok($pipe->Connect, 'Connect');
    ok($pipe->Write('ping'), 'Write');
    is($pipe->Read, 'pong', 'Read');
    ok($pipe->Disconnect, 'Disconnect');
    waitpid($pid, 0);
    is($? >> 8, 0, 'the client saw ping and answered');
}
ok($pipe->Close, 'Close');
done_testing;
