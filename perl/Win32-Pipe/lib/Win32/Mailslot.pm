package Win32::Mailslot;

# Mailslots in the style of Win32::Pipe: the one reader of a name on this
# machine (new), and writers to it, to one host, to a domain or to every
# host (`\\*\mailslot\NAME`) (open). One-way, whole messages, unreliable
# across the network, as on Windows.

use strict;
use warnings;

use FFI::Platypus::Buffer qw(scalar_to_buffer);

use Win32::Pipe::FFI;

our $VERSION = '0.027';
our $ErrorNum  = 0;
our $ErrorText = '';

use constant {
    MAILSLOT_WAIT_FOREVER => 0xFFFFFFFF,
    MAILSLOT_NO_MESSAGE   => 0xFFFFFFFF,
    # new()'s FLAGS: also take messages from other hosts (UDP 138).
    MAILSLOT_NETWORK      => 0x1,
};

my $GENERIC_WRITE = 0x40000000;

sub _fail {
    my ($self, $code, $false) = @_;
    my $text = Win32::Pipe::FFI::last_error_text();
    ($ErrorNum, $ErrorText) = ($code, $text);
    $self->{error} = [$code, $text] if ref $self;
    return $false;
}

sub _full {
    my $name = shift;
    return $name =~ /^\\\\/ ? $name : "\\\\.\\mailslot\\$name";
}

# new(NAME [, MAX_MESSAGE_SIZE [, TIMEOUT_MS [, FLAGS]]]): the reader of
# \\.\mailslot\NAME. MAX_MESSAGE_SIZE 0 (the default): any size; TIMEOUT_MS:
# how long Read waits (MAILSLOT_WAIT_FOREVER, the default). undef on
# failure (ERROR_ALREADY_EXISTS, 183, when another reader has the name).
sub new {
    my ($class, $name, $max, $timeout, $flags) = @_;
    my $h = 0;
    my $rc = Win32::Pipe::FFI::pipeslot_create_mailslot(_full($name), $max || 0,
        defined $timeout ? $timeout : MAILSLOT_WAIT_FOREVER, $flags || 0, \$h);
    return _fail(undef, $rc, undef) if $rc != 0;
    return bless { handle => $h, reader => 1, error => [0, ''], buffer => Win32::Pipe::FFI::Buffer->new(65536) }, $class;
}

# open(NAME): a writer to NAME: \\.\mailslot\NAME (this machine),
# \\HOST\mailslot\NAME, \\DOMAIN\mailslot\NAME or \\*\mailslot\NAME.
sub open {
    my ($class, $name) = @_;
    my $h = 0;
    my $rc = Win32::Pipe::FFI::pipeslot_create_file(_full($name), $GENERIC_WRITE, 0, \$h);
    return _fail(undef, $rc, undef) if $rc != 0;
    return bless { handle => $h, reader => 0, error => [0, ''] }, $class;
}

# Read(): the next message, whole; undef on failure (121 when the timeout ran out).
sub Read {
    my $self = shift;
    return undef unless $self->{handle} && $self->{reader};
    while (1) {
        my $buf = $self->{buffer};
        my $got = 0;
        my $rc = Win32::Pipe::FFI::pipeslot_read_file($self->{handle}, $buf->ptr, $buf->size, \$got);
        return $buf->take($got) if $rc == 0;
        return $self->_fail($rc, undef) if $rc != 122;
        # A message larger than the buffer stays: make room and read it.
        my (undef, $next) = $self->Info;
        return $self->_fail($rc, undef) unless $next && $next != MAILSLOT_NO_MESSAGE;
        $self->{buffer} = Win32::Pipe::FFI::Buffer->new($next);
    }
}

# Write(DATA): one message. True or false.
sub Write {
    my ($self, $data) = @_;
    return 0 unless $self->{handle} && !$self->{reader};
    my ($ptr, $len) = scalar_to_buffer(defined $data ? $data : '');
    my $rc = Win32::Pipe::FFI::pipeslot_write_file($self->{handle}, $ptr, $len, undef);
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

# Info(): (max message size, next size or MAILSLOT_NO_MESSAGE, messages
# waiting, read timeout), as GetMailslotInfo; empty on failure.
sub Info {
    my $self = shift;
    return () unless $self->{handle} && $self->{reader};
    my ($max, $next, $count, $timeout) = (0, 0, 0, 0);
    my $rc = Win32::Pipe::FFI::pipeslot_get_mailslot_info($self->{handle}, \$max, \$next, \$count, \$timeout);
    return $self->_fail($rc, ()) if $rc != 0;
    return ($max, $next, $count, $timeout);
}

# SetTimeout(MS): how long Read waits from now on.
sub SetTimeout {
    my ($self, $ms) = @_;
    return 0 unless $self->{handle} && $self->{reader};
    my $rc = Win32::Pipe::FFI::pipeslot_set_mailslot_info($self->{handle}, $ms);
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

sub Error {
    my $self = shift;
    my ($n, $t) = ref $self ? @{ $self->{error} } : ($ErrorNum, $ErrorText);
    return wantarray ? ($n, $t) : "[$n] \"$t\"";
}

sub Close {
    my $self = shift;
    my $h = delete $self->{handle} or return 0;
    my $rc = Win32::Pipe::FFI::pipeslot_close_handle($h);
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

sub DESTROY {
    my $self = shift;
    local ($@, $!, $?);
    $self->Close if $self->{handle};
}

1;
