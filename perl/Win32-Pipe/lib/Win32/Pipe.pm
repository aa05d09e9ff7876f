package Win32::Pipe;

# Win32::Pipe on Linux: the seed's module, its calls and return conventions
# (those of Win32::Pipe 0.027 from libwin32), on pipeslot's C ABI. Without
# its known problems: a Read whose peer died returns undef at once (Error
# 109), nothing need block (PIPE_NOWAIT, timeouts), pipes are their owner's
# unless made open to all, and the I/O is pipeslot's (Unix-socket speed).

use strict;
use warnings;

use Exporter ();
use FFI::Platypus::Buffer qw(scalar_to_buffer);

use Win32::Pipe::FFI;

our $VERSION = '0.027';
our @ISA = ('Exporter');

# The last failure of any call: number and text (also for Error() called
# on the class).
our $ErrorNum  = 0;
our $ErrorText = '';

use constant {
    DEFAULT_WAIT_TIME          => 10000,
    NMPWAIT_USE_DEFAULT_WAIT   => 0,
    NMPWAIT_NOWAIT             => 1,
    NMPWAIT_WAIT_FOREVER       => 0xFFFFFFFF,
    PIPE_ACCESS_INBOUND        => 0x1,
    PIPE_ACCESS_OUTBOUND       => 0x2,
    PIPE_ACCESS_DUPLEX         => 0x3,
    PIPE_TYPE_BYTE             => 0x0,
    PIPE_TYPE_MESSAGE          => 0x4,
    PIPE_READMODE_BYTE         => 0x0,
    PIPE_READMODE_MESSAGE      => 0x2,
    PIPE_WAIT                  => 0x0,
    PIPE_NOWAIT                => 0x1,
    PIPE_ACCEPT_REMOTE_CLIENTS => 0x0,
    PIPE_REJECT_REMOTE_CLIENTS => 0x8,
    PIPE_UNLIMITED_INSTANCES   => 255,
    # pipeslot's own: FLAGS of new() that let every local user open the pipe.
    PIPESLOT_ALLOW_EVERYONE    => 0x100,
    ERROR_FILE_NOT_FOUND       => 2,
    ERROR_ACCESS_DENIED        => 5,
    ERROR_BROKEN_PIPE          => 109,
    ERROR_SEM_TIMEOUT          => 121,
    ERROR_PIPE_BUSY            => 231,
    ERROR_NO_DATA              => 232,
    ERROR_PIPE_NOT_CONNECTED   => 233,
    ERROR_MORE_DATA            => 234,
    ERROR_PIPE_CONNECTED       => 535,
    ERROR_PIPE_LISTENING       => 536,
    ERROR_PRIVILEGE_NOT_HELD   => 1314,
    ERROR_CANNOT_IMPERSONATE   => 1368,
};

our @EXPORT = qw(
  DEFAULT_WAIT_TIME NMPWAIT_USE_DEFAULT_WAIT NMPWAIT_NOWAIT NMPWAIT_WAIT_FOREVER
  PIPE_ACCESS_INBOUND PIPE_ACCESS_OUTBOUND PIPE_ACCESS_DUPLEX
  PIPE_TYPE_BYTE PIPE_TYPE_MESSAGE PIPE_READMODE_BYTE PIPE_READMODE_MESSAGE
  PIPE_WAIT PIPE_NOWAIT PIPE_ACCEPT_REMOTE_CLIENTS PIPE_REJECT_REMOTE_CLIENTS
  PIPE_UNLIMITED_INSTANCES
);
our @EXPORT_OK = (@EXPORT, qw(
  PIPESLOT_ALLOW_EVERYONE ERROR_FILE_NOT_FOUND ERROR_ACCESS_DENIED ERROR_BROKEN_PIPE
  ERROR_SEM_TIMEOUT ERROR_PIPE_BUSY ERROR_NO_DATA ERROR_PIPE_NOT_CONNECTED ERROR_MORE_DATA
  ERROR_PIPE_CONNECTED ERROR_PIPE_LISTENING ERROR_PRIVILEGE_NOT_HELD ERROR_CANNOT_IMPERSONATE
));
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $BUFFER_SIZE = 512;
my $GENERIC_RW  = 0x80000000 | 0x40000000;
my $INFINITE    = 0xFFFFFFFF;

# Records a failed call's code (on the object, when there is one, and for
# the class); returns the false value the method gives back.
sub _fail {
    my ($self, $code, $false) = @_;
    my $text = Win32::Pipe::FFI::last_error_text();
    ($ErrorNum, $ErrorText) = ($code, $text);
    if (ref $self) {
        $self->{error} = [$code, $text];
    }
    return $false;
}

sub _error_as {
    my ($num, $text) = @_;
    return wantarray ? ($num, $text) : "[$num] \"$text\"";
}

# new(NAME [, TIMEOUT [, FLAGS]]): a NAME that starts with \\ opens that
# pipe as a client (waiting up to TIMEOUT ms, DEFAULT_WAIT_TIME by default,
# while every instance is busy); any other NAME creates the server
# \\.\pipe\NAME. FLAGS: PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE for a
# message pipe, PIPE_NOWAIT, PIPE_REJECT_REMOTE_CLIENTS,
# PIPESLOT_ALLOW_EVERYONE. Returns the object, or undef (see Error).
sub new {
    my ($class, $name, $timeout, $flags) = @_;
    $timeout ||= DEFAULT_WAIT_TIME;
    $flags   ||= 0;
    return _fail(undef, 123, undef) unless defined $name;
    my $self = bless {
        buffer  => Win32::Pipe::FFI::Buffer->new($BUFFER_SIZE),
        error   => [0, ''],
        flags   => $flags,
        timeout => $timeout,
    }, $class;
    my $handle = 0;
    my $rc;
    if ($name =~ /^\\\\/) {
        $self->{client} = 1;
        my $read_mode = $flags & PIPE_READMODE_MESSAGE;
        while (1) {
            $rc = Win32::Pipe::FFI::pipeslot_create_file($name, $GENERIC_RW, $read_mode, \$handle);
            last unless $rc == ERROR_PIPE_BUSY;
            # Every instance is busy: wait for one, as CreateFile's callers do.
            my $w = Win32::Pipe::FFI::pipeslot_wait_named_pipe($name, $timeout);
            if ($w != 0) { $rc = $w; last }
        }
        if ($rc == 0 && ($flags & PIPE_NOWAIT)) {
            $rc = Win32::Pipe::FFI::pipeslot_set_named_pipe_handle_state($handle, $read_mode | PIPE_NOWAIT);
        }
    } else {
        my $full = $name =~ /^\\\\\.\\pipe\\/i ? $name : "\\\\.\\pipe\\$name";
        my $mode = $flags & (PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_NOWAIT | PIPE_REJECT_REMOTE_CLIENTS);
        my $open = ($flags & PIPESLOT_ALLOW_EVERYONE) ? 1 : 0;
        $rc = Win32::Pipe::FFI::pipeslot_create_named_pipe(
            $full, PIPE_ACCESS_DUPLEX, $mode, PIPE_UNLIMITED_INSTANCES, 0, 0, 5000, $open, \$handle);
    }
    return _fail(undef, $rc, undef) if $rc != 0;
    $self->{handle} = $handle;
    $self->{name}   = $name;
    return $self;
}

# Connect([TIMEOUT]): a server waits for a client (at most TIMEOUT ms when
# given; with PIPE_NOWAIT it only looks, and a missing client is
# ERROR_PIPE_LISTENING). True once one is there, also when one already was.
sub Connect {
    my ($self, $timeout) = @_;
    return 0 unless $self->{handle};
    $timeout = 0 if $self->{flags} & PIPE_NOWAIT;
    my $rc = Win32::Pipe::FFI::pipeslot_connect_named_pipe($self->{handle}, defined $timeout ? $timeout : $INFINITE);
    return 1 if $rc == 0 || $rc == ERROR_PIPE_CONNECTED;
    if ($rc == ERROR_SEM_TIMEOUT && ($self->{flags} & PIPE_NOWAIT)) {
        ($ErrorNum, $ErrorText) = (ERROR_PIPE_LISTENING, 'ERROR_PIPE_LISTENING (536): no client is connected yet');
        $self->{error} = [$ErrorNum, $ErrorText];
        return 0;
    }
    return $self->_fail($rc, 0);
}

# Disconnect([PURGE]): ends the client's connection, once the client has
# read everything written to it (a script that writes its answer and
# disconnects loses nothing); Disconnect(1) purges: what the client has not
# read yet is thrown away at once.
sub Disconnect {
    my ($self, $purge) = @_;
    return 0 unless $self->{handle};
    if (!$purge) {
        my $rc = Win32::Pipe::FFI::pipeslot_flush_file_buffers($self->{handle});
        # A client that has gone needs no flush.
        return $self->_fail($rc, 0)
          unless $rc == 0 || $rc == ERROR_BROKEN_PIPE || $rc == ERROR_NO_DATA || $rc == ERROR_PIPE_NOT_CONNECTED;
    }
    my $rc = Win32::Pipe::FFI::pipeslot_disconnect_named_pipe($self->{handle});
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

# Read(): up to BufferSize bytes (a byte pipe), or the next whole message
# (message read mode, however long). undef on failure: Error gives 109
# at once when the other end has gone, 232 when PIPE_NOWAIT found nothing.
sub Read {
    my $self = shift;
    return undef unless $self->{handle};
    my $buf = $self->{buffer};
    my $data = '';
    while (1) {
        my $got = 0;
        my $rc = Win32::Pipe::FFI::pipeslot_read_file($self->{handle}, $buf->ptr, $buf->size, \$got);
        $data .= $buf->take($got) if $got;
        return $data if $rc == 0;
        next if $rc == ERROR_MORE_DATA;
        return $self->_fail($rc, undef);
    }
}

# Write(DATA): all of DATA (one message on a message pipe). True or false.
sub Write {
    my ($self, $data) = @_;
    return 0 unless $self->{handle};
    $data = '' unless defined $data;
    my ($ptr, $len) = scalar_to_buffer($data);
    my $rc = Win32::Pipe::FFI::pipeslot_write_file($self->{handle}, $ptr, $len, undef);
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

# Peek(): what waits to be read, without taking it ('' when nothing does);
# undef on failure.
sub Peek {
    my $self = shift;
    return undef unless $self->{handle};
    my $buf = $self->{buffer};
    my ($got, $avail, $left) = (0, 0, 0);
    my $rc = Win32::Pipe::FFI::pipeslot_peek_named_pipe($self->{handle}, $buf->ptr, $buf->size, \$got, \$avail, \$left);
    return $self->_fail($rc, undef) if $rc != 0;
    return $buf->take($got);
}

# Transact(DATA): writes one message and returns the whole answer (a
# message pipe in message read mode); undef on failure.
sub Transact {
    my ($self, $data) = @_;
    return undef unless $self->{handle};
    my ($ptr, $len) = scalar_to_buffer(defined $data ? $data : '');
    my $buf = $self->{buffer};
    my $got = 0;
    my $rc = Win32::Pipe::FFI::pipeslot_transact_named_pipe($self->{handle}, $ptr, $len, $buf->ptr, $buf->size, \$got);
    my $reply = $got ? $buf->take($got) : '';
    while ($rc == ERROR_MORE_DATA) {
        $got = 0;
        $rc = Win32::Pipe::FFI::pipeslot_read_file($self->{handle}, $buf->ptr, $buf->size, \$got);
        $reply .= $buf->take($got) if $got;
    }
    return $rc == 0 ? $reply : $self->_fail($rc, undef);
}

# Error(): (number, text) of this object's last failure in list context,
# '[number] "text"' in scalar context; called on the class (or as a
# function), the last failure of any call (a failed new, say).
sub Error {
    my $self = shift;
    return _error_as(@{ $self->{error} }) if ref $self;
    return _error_as($ErrorNum, $ErrorText);
}

sub BufferSize {
    my $self = shift;
    return $self->{buffer} ? $self->{buffer}->size : 0;
}

# ResizeBuffer(SIZE): the buffer Read and Peek take at most from a byte
# pipe. Returns the size now (SIZE, or the old size when SIZE is not > 0).
sub ResizeBuffer {
    my ($self, $size) = @_;
    if (defined $size && $size =~ /^\d+$/ && $size > 0) {
        $self->{buffer} = Win32::Pipe::FFI::Buffer->new($size);
    }
    return $self->BufferSize;
}

# GetInfo(): (state, instances, user, 0, 0): the handle's read mode and
# PIPE_NOWAIT bits, the pipe's instances, and on a server the connected
# client's user (DOMAIN\user for one through the gateway); empty on failure.
sub GetInfo {
    my $self = shift;
    return () unless $self->{handle};
    my ($state, $instances) = (0, 0);
    my $rc = Win32::Pipe::FFI::pipeslot_get_named_pipe_handle_state($self->{handle}, \$state, \$instances);
    return $self->_fail($rc, ()) if $rc != 0;
    my $user = '';
    if (!$self->{client}) {
        my ($id, $who) = $self->_client;
        return () unless $id;
        $user = $who;
    }
    return ($state, $instances, $user, 0, 0);
}

# The connected client: ([pid, uid, gid, remote], user name), or () after a failure.
sub _client {
    my $self = shift;
    my $ident = Win32::Pipe::FFI::Buffer->new(16);
    my $name = Win32::Pipe::FFI::Buffer->new(256);
    my $rc = Win32::Pipe::FFI::pipeslot_get_client_identity($self->{handle}, $ident->ptr, $name->ptr, $name->size);
    return $self->_fail($rc, ()) if $rc != 0;
    my @id = unpack('L4', $ident->take(16));
    my ($user) = unpack('Z*', $name->take($name->size));
    return (\@id, $user);
}

# ImpersonateClient(): the process takes the connected client's uid and
# gid as its effective ids (seteuid/setegid), as ImpersonateNamedPipeClient
# gives a thread the client's token; StopImpersonation() takes them back.
# Needs root (or a client of the same user), else false with
# ERROR_PRIVILEGE_NOT_HELD. A client from another machine (through the
# gateway) has no local identity: its ids are the gateway's, so taking them
# would keep root's rights. It is refused with ERROR_CANNOT_IMPERSONATE.
sub ImpersonateClient {
    my $self = shift;
    return 0 unless $self->{handle} && !$self->{client};
    my ($id, $who) = $self->_client;
    return 0 unless $id;
    my ($uid, $gid, $remote) = @{$id}[1, 2, 3];
    if ($remote) {
        ($ErrorNum, $ErrorText) = (ERROR_CANNOT_IMPERSONATE,
            "ERROR_CANNOT_IMPERSONATE (1368): $who came from another machine: there is no local user to become");
        $self->{error} = [$ErrorNum, $ErrorText];
        return 0;
    }
    if ($> != 0 && $> != $uid) {
        ($ErrorNum, $ErrorText) = (ERROR_PRIVILEGE_NOT_HELD,
            "ERROR_PRIVILEGE_NOT_HELD (1314): becoming uid $uid needs root (seteuid)");
        $self->{error} = [$ErrorNum, $ErrorText];
        return 0;
    }
    $self->{saved_ids} ||= [$>, $)];
    $) = "$gid $gid";
    $> = $uid;
    if ($> != $uid) {
        my $why = "$!";
        $self->StopImpersonation;
        ($ErrorNum, $ErrorText) = (ERROR_PRIVILEGE_NOT_HELD, "ERROR_PRIVILEGE_NOT_HELD (1314): seteuid($uid): $why");
        $self->{error} = [$ErrorNum, $ErrorText];
        return 0;
    }
    return 1;
}

sub StopImpersonation {
    my $self = shift;
    my $saved = delete $self->{saved_ids} or return 1;
    $> = $saved->[0];
    $) = $saved->[1];
    return $> == $saved->[0] ? 1 : 0;
}

# Close(): the client closes; a server instance ends its connection and
# goes away. True the first time.
sub Close {
    my $self = shift;
    $self->StopImpersonation if $self->{saved_ids};
    my $h = delete $self->{handle} or return 0;
    my $rc = Win32::Pipe::FFI::pipeslot_close_handle($h);
    return $rc == 0 ? 1 : $self->_fail($rc, 0);
}

sub DESTROY {
    my $self = shift;
    local ($@, $!, $?);
    $self->Close if $self->{handle};
}

# Info(): the module's own description, as the original's seven strings.
sub Info {
    return ('Pipe extension for Win32 Perl', $VERSION, 'pipeslot ' . Win32::Pipe::FFI::pipeslot_version(),
            'the pipeslot developers', 'Linux', 'libpipeslot_ffi', "After Win32::Pipe by Dave Roth (1996).\n");
}

# Credit(): Info's fields in a framed box, 60 columns wide.
sub Credit {
    my @i = Info();
    my @lines = ('', $i[0], '-' x length $i[0], '', "Version $i[1] ($i[2])", "by $i[3]", '',
                 'Credits:', '--------', split(/\n/, $i[6]), '');
    my $rule = '+' . ('=' x 58) . '+';
    return "\n" . join("\n", $rule, (map { '|' . Center($_, 58) . '|' } @lines), $rule) . "\n";
}

# Center(TEXT, WIDTH): TEXT padded with spaces to WIDTH, in the middle.
sub Center {
    my ($text, $width) = @_;
    my $pad = $width - length $text;
    return $text if $pad <= 0;
    my $left = int($pad / 2);
    return (' ' x $left) . $text . (' ' x ($pad - $left));
}

1;

__END__

=head1 NAME

Win32::Pipe - Windows named pipes on Linux (pipeslot)

=head1 SYNOPSIS

    use Win32::Pipe;

    my $Pipe = Win32::Pipe->new("My Pipe Name") or die Win32::Pipe::Error();
    $Pipe->Connect() or die $Pipe->Error();
    my $Data = $Pipe->Read();
    $Pipe->Write("Howdy! This is cool!");
    $Pipe->Disconnect();
    $Pipe->Close();

    my $Client = Win32::Pipe->new("\\\\server\\pipe\\My Pipe Name");

=head1 DESCRIPTION

The methods of Win32::Pipe 0.027 with its return conventions, on pipeslot:
C<new>, C<Connect>, C<Disconnect>, C<Read>, C<Write>, C<Close>, C<Error>,
C<BufferSize>, C<ResizeBuffer>, C<Info>, C<Credit>, C<GetInfo>,
C<ImpersonateClient>, C<StopImpersonation>; and beyond them C<Peek>,
C<Transact>, message mode, C<PIPE_NOWAIT> and timeouts. Remote names
(C<\\HOST\pipe\NAME>) go over SMB to a Windows host, Samba or a pipeslot
gateway, with credentials from C<PIPESLOT_USER>/C<PIPESLOT_PASSWORD> or
C<PIPESLOT_CREDENTIALS>.

=cut
