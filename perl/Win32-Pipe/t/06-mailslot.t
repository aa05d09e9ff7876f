# Win32::Mailslot: one reader per name, whole messages, timeouts, Info.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
BEGIN { require './t/helper.pl' }
use Win32::Mailslot;

my $name = unique('slot');
my $slot = Win32::Mailslot->new($name, 0, 200);
ok($slot, 'a reader');
ok(!Win32::Mailslot->new($name), 'one reader per name');
is($Win32::Mailslot::ErrorNum, 183, 'ERROR_ALREADY_EXISTS');
my $pid = child {
    my $w = Win32::Mailslot->open("\\\\.\\mailslot\\$name") or return 1;
    $w->Write("message $_") or return 2 for 1 .. 3;
    $w->Write('y' x 70000) or return 3;
    return 0;
};
is(reap($pid), 0, 'another process wrote four messages');
my @info = $slot->Info;
is_deeply([@info[0, 1, 2, 3]], [0, 9, 4, 200], 'Info: any size, next 9 bytes, 4 waiting, 200 ms');
is($slot->Read, "message $_", "message $_, whole") for 1 .. 3;
is(length $slot->Read, 70000, 'a message larger than the buffer, whole');
my $t = time;
ok(!defined $slot->Read, 'then nothing');
is(($slot->Error)[0], 121, 'ERROR_SEM_TIMEOUT');
cmp_ok(time - $t, '>=', 0.15, 'after the timeout');
ok($slot->SetTimeout(0), 'SetTimeout(0)');
$t = time;
ok(!defined $slot->Read, 'returns at once');
cmp_ok(time - $t, '<', 0.1, 'at once');
ok($slot->Close, 'Close');
ok(Win32::Mailslot->new($name), 'the name is free again');
done_testing;
