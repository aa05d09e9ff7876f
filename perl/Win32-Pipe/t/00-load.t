use strict;
use warnings;
use Test::More;

BEGIN { use_ok('Win32::Pipe') }
use_ok('Win32::Mailslot');
can_ok('Win32::Pipe', qw(new Connect Disconnect Read Write Close Error BufferSize ResizeBuffer
                         Info Credit GetInfo ImpersonateClient StopImpersonation Peek Transact));
is(Win32::Pipe::DEFAULT_WAIT_TIME(), 10000, 'DEFAULT_WAIT_TIME');
is(PIPE_READMODE_MESSAGE, 2, 'constants are exported, as the samples use them');
is(PIPE_TYPE_MESSAGE, 4, 'PIPE_TYPE_MESSAGE');
is(PIPE_NOWAIT, 1, 'PIPE_NOWAIT');
is(NMPWAIT_WAIT_FOREVER, 0xFFFFFFFF, 'NMPWAIT_WAIT_FOREVER');
done_testing;
