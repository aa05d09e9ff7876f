# The sample pair (eg/TESTSR.PL, eg/TESTCL.PL) against each other, and
# each against the Rust command, all in separate processes.
use strict;
use warnings;
use Test::More;
use IPC::Open2;
BEGIN { require './t/helper.pl' }

my @perl = ($^X, map { "-I$_" } @INC);
my $pipe = unique('sample');

# Starts TESTSR.PL on $pipe; its pid and its output's handle.
sub start_server {
    my $pid = open(my $out, '-|', @perl, 'eg/TESTSR.PL', $pipe) or die $!;
    return ($pid, $out);
}

# Runs TESTCL.PL with these input lines; its output lines.
sub client {
    my @lines = @_;
    my $pid = open2(my $out, my $in, @perl, 'eg/TESTCL.PL', '/T', '.', uc $pipe);
    print $in "$_\n" for @lines;
    close $in;
    my @got = map { chomp; $_ } <$out>;
    waitpid($pid, 0);
    return @got;
}

my ($spid, $sout) = start_server();
my $who = getpwuid($<);
my @got = client('time', 'whoami', 'upper:hello', 'imp', 'quit');
is($got[0], '< echo: Pipe extension for Win32 Perl', 'the client sent Info; the server echoed it');
like($got[1], qr/^< \w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}$/, 'time');
is($got[2], "< you are $who", 'whoami: GetInfo\'s user');
is($got[3], '< HELLO', 'upper:');
like($got[4], $> == 0 ? qr/^< impersonating: uid $<$/ : qr/^< cannot impersonate: \[1314\]/, 'imp');
is($got[5], '< bye', 'quit');
is_deeply([client('exit')], ['< echo: Pipe extension for Win32 Perl', '< server exiting'], 'exit');
my @log = map { chomp; $_ } <$sout>;
waitpid($spid, 0);
is($? >> 8, 0, 'the server exited');
ok((grep { $_ eq "Connected: $who" } @log), 'the server saw who connected');
ok((grep { $_ eq '> upper:hello' } @log), 'and each request');
ok((grep { /^This pipe's buffer is 512 bytes; now 2048\.$/ } @log), 'BufferSize and ResizeBuffer');

my $bin = pipeslot_bin();
need(defined $bin, 'the pipeslot command is not built (cargo build --release)');
# The Rust command as the client of the Perl server.
($spid, $sout) = start_server();
system($bin, 'wait', $pipe, '--retry', '5s') == 0 or die 'no server';
my @rust = `$bin transact '$pipe' 'upper:from rust' whoami exit`;
chomp @rust;
is_deeply(\@rust, ['FROM RUST', "you are $who", 'server exiting'], 'pipeslot transact against TESTSR.PL');
waitpid($spid, 0);

# The Perl client against the Rust command's echo server.
my $echo = fork;
if ($echo == 0) { open(STDOUT, '>', '/dev/null'); exec($bin, 'serve', $pipe, '--message', '--echo', '--instances', '1') or POSIX::_exit(9) }
system($bin, 'wait', $pipe, '--retry', '5s') == 0 or die 'no echo server';
is_deeply([client('hello', 'quit')], ['< Pipe extension for Win32 Perl', '< hello', '< quit'],
          'TESTCL.PL against pipeslot serve --echo');
kill 'TERM', $echo;
waitpid($echo, 0);
done_testing;
