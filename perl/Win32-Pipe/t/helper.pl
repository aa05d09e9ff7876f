# Shared by the tests: a namespace of their own, unique names, a child
# process that runs a sub, and the built `pipeslot` command when present.
use strict;
use warnings;
use File::Temp qw(tempdir);
use POSIX ();

our $NS = tempdir('pipeslot-perl-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 01777, $NS;
$ENV{PIPESLOT_DIR} = $NS;

my $seq = 0;
sub unique { my $tag = shift; return "perl-$tag-$$-" . $seq++ }

# Runs CODE in a child process (its exit status is CODE's return value);
# returns the pid.
sub child(&) {
    my $code = shift;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $rc = eval { $code->() };
        warn $@ if $@;
        POSIX::_exit(defined $rc ? $rc : 99);
    }
    return $pid;
}

sub reap { my $pid = shift; waitpid($pid, 0); return $? >> 8 }

# The repository's built command (target/release or target/debug), or $PIPESLOT_BIN.
sub pipeslot_bin {
    return $ENV{PIPESLOT_BIN} if $ENV{PIPESLOT_BIN};
    require Win32::Pipe::FFI;
    my $lib = Win32::Pipe::FFI::library_path();
    (my $dir = $lib) =~ s{/[^/]+$}{};
    return -x "$dir/pipeslot" ? "$dir/pipeslot" : undef;
}

# Skips (outside CI) or fails (under CI=true) when something is missing.
sub need {
    my ($ok, $why) = @_;
    return 1 if $ok;
    if (($ENV{CI} || '') eq 'true') {
        Test::More::fail("$why; CI must run this");
        Test::More::done_testing();
        exit 1;
    }
    Test::More::plan(skip_all => $why);
}

1;
