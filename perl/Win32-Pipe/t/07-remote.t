# A remote name: this server is exported by a pipeslot gateway (the
# command, on loopback), and a client in another process opens
# \\127.0.0.1\pipe\NAME over SMB as a remote user.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
BEGIN { require './t/helper.pl' }
use Win32::Pipe qw(:all);

my $bin = pipeslot_bin();
need(defined $bin, 'the pipeslot command is not built (cargo build --release)');

my $port = do { my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0); $s->sockport };
my $name = unique('remote');
my $conf = "$::NS/gateway.toml";
open(my $fh, '>', $conf) or die $!;
print $fh qq{listen = "127.0.0.1:$port"\nexports = ["$name"]\n};
close $fh;
chmod 0600, $conf;
open(my $add, '|-', $bin, 'gateway', 'user', 'add', 'alice', '--config', $conf) or die $!;
print $add "wonderland\n";
close $add;
is($?, 0, 'a gateway account');
my $gw = fork;
if ($gw == 0) { open(STDOUT, '>', '/dev/null'); open(STDERR, '>', "$::NS/gateway.log"); exec($bin, 'gateway', '--config', $conf) or POSIX::_exit(9) }

my $server = Win32::Pipe->new($name, 0, PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE);
ok($server, 'a local server that takes remote clients (Win32\'s default)');
local $ENV{PIPESLOT_SMB_PORT} = $port;
local $ENV{PIPESLOT_USER} = 'alice';
local $ENV{PIPESLOT_PASSWORD} = 'wonderland';
my $pid = child {
    my $c;
    for (1 .. 300) { last if $c = Win32::Pipe->new("\\\\127.0.0.1\\pipe\\$name", 5000, PIPE_READMODE_MESSAGE); sleep 0.02 }
    $c or return 1;
    $c->Write('over SMB') or return 2;
    my $r = $c->Read;
    return defined $r && $r eq 'OVER SMB' ? 0 : 3;
};
ok($server->Connect, 'the remote client connected through the gateway');
like(($server->GetInfo)[2], qr/^(?:[^\\]*\\)?alice$/i, 'GetInfo names the remote user ([DOMAIN\\]alice)');
my $euid = $>;
ok(!$server->ImpersonateClient, 'a remote client cannot be impersonated (its ids are the gateway\'s)');
is(($server->Error)[0], ERROR_CANNOT_IMPERSONATE, 'ERROR_CANNOT_IMPERSONATE');
is($>, $euid, 'the effective uid is unchanged');
my $m = $server->Read;
is($m, 'over SMB', 'its message');
ok($server->Write(uc $m), 'the answer');
is(reap($pid), 0, 'the remote client read it');
ok(!defined $server->Read, 'then it is gone');
is(($server->Error)[0], ERROR_BROKEN_PIPE, 'ERROR_BROKEN_PIPE');

# A wrong password: undef, with the logon failure.
local $ENV{PIPESLOT_PASSWORD} = 'wrong';
ok(!Win32::Pipe->new("\\\\127.0.0.1\\pipe\\$name"), 'a wrong password');
is($Win32::Pipe::ErrorNum, 1326, 'ERROR_LOGON_FAILURE');
kill 'TERM', $gw;
waitpid($gw, 0);
done_testing;
