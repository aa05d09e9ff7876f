# Security the seed lacked, tried with a second user (nobody): a pipe is
# its owner's unless opened to all; GetInfo names the client's user; a root
# server can impersonate its client and stop.
use strict;
use warnings;
use Test::More;
BEGIN { require './t/helper.pl' }
use Win32::Pipe qw(:all);

need($> == 0, 'not root: cannot run a client as another user');
my $nobody = getpwnam('nobody');
need(defined $nobody, 'no user nobody');
my $ngid = (getpwnam('nobody'))[3];

# Runs CODE as nobody in a child; its exit status.
sub as_nobody(&) {
    my $code = shift;
    return reap(child { $) = "$ngid $ngid"; $( = $ngid; $< = $> = $nobody; return $code->() });
}

my $private = unique('private');
my $p = Win32::Pipe->new($private);
ok($p, 'an owner-only pipe (the default)');
is(as_nobody {
    my $c = Win32::Pipe->new("\\\\.\\pipe\\$private");
    return 10 if $c;
    return $Win32::Pipe::ErrorNum == ERROR_ACCESS_DENIED ? 0 : 11;
}, 0, 'nobody is refused with ERROR_ACCESS_DENIED');

my $open = unique('open');
my $s = Win32::Pipe->new($open, 0, PIPESLOT_ALLOW_EVERYONE);
ok($s, 'a pipe open to every local user');
my $pid = child {
    $) = "$ngid $ngid"; $( = $ngid; $< = $> = $nobody;
    my $c = Win32::Pipe->new("\\\\.\\pipe\\$open") or return 1;
    $c->Write('from nobody') or return 2;
    my $r = $c->Read;
    return defined $r && $r eq 'ok' ? 0 : 3;
};
ok($s->Connect, 'nobody connects');
is(($s->GetInfo)[2], 'nobody', "GetInfo's third element: the client's user");
ok($s->ImpersonateClient, 'ImpersonateClient');
is($>, $nobody, 'the effective uid is the client\'s');
my $file = "$::NS/written-as-the-client";
ok(open(my $fh, '>', $file), 'a file made while impersonating');
close $fh;
is((stat $file)[4], $nobody, '... belongs to the client');
ok($s->StopImpersonation, 'StopImpersonation');
is($>, 0, 'root again');
is($s->Read, 'from nobody', 'its message');
ok($s->Write('ok'), 'the answer');
is(reap($pid), 0, 'the client read it');
$s->Disconnect;

# Impersonation needs the right to change users.
my $pid2 = child {
    $) = "$ngid $ngid"; $( = $ngid; $< = $> = $nobody;
    my $mine = Win32::Pipe->new(unique('nobodys'), 0, PIPESLOT_ALLOW_EVERYONE) or return 1;
    return 0;
};
is(reap($pid2), 0, 'nobody may serve a pipe of its own');
done_testing;
