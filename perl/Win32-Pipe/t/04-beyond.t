# Beyond the seed: message mode, Peek, Transact, PIPE_NOWAIT, timeouts,
# GetInfo, and a busy pipe that a client waits for.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
BEGIN { require './t/helper.pl' }
use Win32::Pipe qw(:all);

my $msg = PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE;
my $name = unique('msg');
my $server = Win32::Pipe->new($name, 0, $msg);
ok($server, 'a message pipe');
my $pid = child {
    my $c = Win32::Pipe->new("\\\\.\\pipe\\$name", 5000, PIPE_READMODE_MESSAGE) or return 1;
    $c->Write('one') && $c->Write('two') or return 2;
    my $reply = $c->Transact('question') or return 3;
    return 4 unless $reply eq 'answer:question';
    my $big = $c->Transact('big') or return 5;
    return 6 unless $big eq ('x' x 2000);
    return 0;
};
ok($server->Connect, 'Connect');
sleep 0.05 until length($server->Peek // '');
is($server->Peek, 'one', 'Peek shows the next message without taking it');
is($server->Read, 'one', 'messages keep their bounds');
is($server->Read, 'two', '... each its own Read');
is($server->Read, 'question', 'the transact request');
ok($server->Write('answer:question'), 'the answer');
is($server->Read, 'big', 'a request for more than BufferSize');
ok($server->Write('x' x 2000), 'an answer of 2000 bytes (buffer 512)');
my @info = $server->GetInfo;
is($info[0], PIPE_READMODE_MESSAGE, 'GetInfo: the read mode');
is($info[1], 1, 'GetInfo: one instance');
is($info[2], scalar getpwuid($<), "GetInfo: the client's user");
is(reap($pid), 0, 'the client got whole answers (Transact reads all of a long one)');
ok(!defined $server->Read, 'then the client is gone');
is(($server->Error)[0], ERROR_BROKEN_PIPE, 'ERROR_BROKEN_PIPE (109)');
ok($server->Disconnect, 'Disconnect');

# PIPE_NOWAIT: nothing blocks.
my $nw = unique('nowait');
my $s2 = Win32::Pipe->new($nw, 0, PIPE_NOWAIT);
ok($s2, 'a PIPE_NOWAIT server');
my $t = time;
ok(!$s2->Connect, 'Connect without a client returns at once');
is(($s2->Error)[0], ERROR_PIPE_LISTENING, 'ERROR_PIPE_LISTENING');
my $c2 = Win32::Pipe->new("\\\\.\\pipe\\$nw", 0, PIPE_NOWAIT);
ok($c2, 'a PIPE_NOWAIT client');
ok($s2->Connect, 'now it connects');
ok(!defined $c2->Read, 'a Read with nothing there returns at once');
is(($c2->Error)[0], ERROR_NO_DATA, 'ERROR_NO_DATA');
cmp_ok(time - $t, '<', 1, 'no call waited');
ok($s2->Write('now'), 'Write');
sleep 0.01 until length($c2->Peek // '');
is($c2->Read, 'now', 'and the Read takes it');

# Connect with a timeout; a busy pipe and a client that waits for it.
my $one = unique('busy');
my $s3 = Win32::Pipe->new($one);
$t = time;
ok(!$s3->Connect(50), 'Connect(50) with no client');
is(($s3->Error)[0], ERROR_SEM_TIMEOUT, 'ERROR_SEM_TIMEOUT');
cmp_ok(time - $t, '<', 1, 'after about 50 ms');
$s3->Close;
done_testing;
