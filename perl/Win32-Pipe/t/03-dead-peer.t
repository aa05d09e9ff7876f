# The seed's first known problem, gone: a Read whose other end died returns
# undef at once, and Error gives 109 (ERROR_BROKEN_PIPE). Both ways round.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
BEGIN { require './t/helper.pl' }
use Win32::Pipe;

my $name = unique('dead');
my $server = Win32::Pipe->new($name);
ok($server, 'a server');
my $pid = child {
    my $c = Win32::Pipe->new("\\\\.\\pipe\\$name") or return 1;
    $c->Write('here') or return 2;
    sleep 60;    # killed long before
    return 0;
};
ok($server->Connect, 'the client connected');
is($server->Read, 'here', 'its first message');
kill 'KILL', $pid;
my $t = time;
ok(!defined $server->Read, 'a Read after SIGKILL of the client: undef');
my $took = time - $t;
is(($server->Error)[0], 109, 'ERROR_BROKEN_PIPE');
cmp_ok($took, '<', 1, sprintf('at once (%.3f s), never a hang', $took));
waitpid($pid, 0);
ok($server->Disconnect, 'Disconnect');

# The server dies under a client that waits in Read.
my $name2 = unique('dead-server');
my $spid = child {
    my $s = Win32::Pipe->new($name2) or return 1;
    $s->Connect or return 2;
    sleep 60;
    return 0;
};
my $client;
for (1 .. 500) { last if $client = Win32::Pipe->new("\\\\.\\pipe\\$name2"); sleep 0.01 }
ok($client, 'a client of the other process');
sleep 0.1;
kill 'KILL', $spid;
$t = time;
ok(!defined $client->Read, 'a Read after SIGKILL of the server: undef');
is(($client->Error)[0], 109, 'ERROR_BROKEN_PIPE');
cmp_ok(time - $t, '<', 1, 'at once');
waitpid($spid, 0);
done_testing;
