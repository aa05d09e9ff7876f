package Win32::Pipe::FFI;

# The bridge to pipeslot's C ABI (libpipeslot_ffi.so, crates/pipeslot-ffi):
# finds the library, attaches its calls with FFI::Platypus, and turns a
# call's Win32 code into (number, text). Used by Win32::Pipe and
# Win32::Mailslot; not an interface of its own.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use FFI::CheckLib qw(find_lib);
use FFI::Platypus 2.00;
use FFI::Platypus::Buffer qw(scalar_to_buffer buffer_to_scalar);
use FFI::Platypus::Memory qw(malloc free);

our $VERSION = '0.027';

# The library: $PIPESLOT_FFI_LIB, else the build of the repository this
# module sits in (target/release, then target/debug), else the system's.
sub library_path {
    return $ENV{PIPESLOT_FFI_LIB} if $ENV{PIPESLOT_FFI_LIB};
    my $dir = dirname(File::Spec->rel2abs(__FILE__));
    while (1) {
        for my $profile (qw(release debug)) {
            my $so = File::Spec->catfile($dir, 'target', $profile, 'libpipeslot_ffi.so');
            return $so if -f $so;
        }
        my $up = dirname($dir);
        last if $up eq $dir;
        $dir = $up;
    }
    my ($found) = find_lib(lib => 'pipeslot_ffi');
    return $found if $found;
    die "Win32::Pipe: libpipeslot_ffi.so not found: build it (cargo build --release -p pipeslot-ffi) "
      . "or set PIPESLOT_FFI_LIB to its path\n";
}

my $ffi = FFI::Platypus->new(api => 2, lib => library_path());

my %calls = (
    pipeslot_create_named_pipe => [[qw(string uint32 uint32 uint32 uint32 uint32 uint32 uint32 uint64*)] => 'uint32'],
    pipeslot_connect_named_pipe => [[qw(uint64 uint32)] => 'uint32'],
    pipeslot_disconnect_named_pipe => [['uint64'] => 'uint32'],
    pipeslot_create_file => [[qw(string uint32 uint32 uint64*)] => 'uint32'],
    pipeslot_wait_named_pipe => [[qw(string uint32)] => 'uint32'],
    pipeslot_read_file => [[qw(uint64 opaque size_t size_t*)] => 'uint32'],
    pipeslot_write_file => [[qw(uint64 opaque size_t size_t*)] => 'uint32'],
    pipeslot_transact_named_pipe => [[qw(uint64 opaque size_t opaque size_t size_t*)] => 'uint32'],
    pipeslot_peek_named_pipe => [[qw(uint64 opaque size_t size_t* size_t* size_t*)] => 'uint32'],
    pipeslot_flush_file_buffers => [['uint64'] => 'uint32'],
    pipeslot_get_named_pipe_info => [[qw(uint64 uint32* uint32* uint32* uint32*)] => 'uint32'],
    pipeslot_set_named_pipe_handle_state => [[qw(uint64 uint32)] => 'uint32'],
    pipeslot_get_named_pipe_handle_state => [[qw(uint64 uint32* uint32*)] => 'uint32'],
    pipeslot_get_client_identity => [[qw(uint64 opaque opaque size_t)] => 'uint32'],
    pipeslot_close_handle => [['uint64'] => 'uint32'],
    pipeslot_last_error_message => [[qw(opaque size_t)] => 'size_t'],
    pipeslot_error_name => [['uint32'] => 'string'],
    pipeslot_version => [[] => 'string'],
    pipeslot_create_mailslot => [[qw(string uint32 uint32 uint32 uint64*)] => 'uint32'],
    pipeslot_get_mailslot_info => [[qw(uint64 uint32* uint32* uint32* uint32*)] => 'uint32'],
    pipeslot_set_mailslot_info => [[qw(uint64 uint32)] => 'uint32'],
);
for my $name (sort keys %calls) {
    $ffi->attach($name => @{ $calls{$name} });
}

# The text of the last failure on this thread, as the library words it
# ("ERROR_BROKEN_PIPE (109): ...").
sub last_error_text {
    my $need = pipeslot_last_error_message(undef, 0);
    my $buf = malloc($need + 1);
    pipeslot_last_error_message($buf, $need + 1);
    my $text = buffer_to_scalar($buf, $need - 1);
    free($buf);
    return $text;
}

# A fixed buffer the C side may write into; freed with the object.
package Win32::Pipe::FFI::Buffer;

sub new {
    my ($class, $size) = @_;
    $size = 1 if $size < 1;
    return bless { ptr => Win32::Pipe::FFI::malloc($size), size => $size }, $class;
}
sub ptr  { $_[0]{ptr} }
sub size { $_[0]{size} }
sub take { Win32::Pipe::FFI::buffer_to_scalar($_[0]{ptr}, $_[1]) }
sub DESTROY {
    my $self = shift;
    Win32::Pipe::FFI::free($self->{ptr}) if $self->{ptr};
    $self->{ptr} = undef;
}

1;
