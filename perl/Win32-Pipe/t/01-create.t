# new, BufferSize, ResizeBuffer and Close on a server, and how failures are
# told (Error in list and scalar context, on the object and on the class).
use strict;
use warnings;
use Test::More;
BEGIN { require './t/helper.pl' }
use Win32::Pipe;

my $name = unique('create');
my $pipe = Win32::Pipe->new($name);
isa_ok($pipe, 'Win32::Pipe', 'a server');
is($pipe->BufferSize, 512, 'the default buffer is 512 bytes');
is($pipe->ResizeBuffer(4096), 4096, 'ResizeBuffer returns the new size');
is($pipe->BufferSize, 4096, 'and keeps it');
is($pipe->ResizeBuffer(0), 4096, 'a size that is not > 0 changes nothing');
is_deeply([$pipe->Error], [0, ''], 'no error yet');

# The same name again makes another instance of it.
my $second = Win32::Pipe->new($name);
ok($second, 'a second instance of the name');
ok($second->Close, 'Close is true');
ok(!$second->Close, 'and false the second time');

# A client of a pipe that does not exist: undef, and the reason.
my $none = Win32::Pipe->new("\\\\.\\pipe\\" . unique('none'));
ok(!defined $none, 'no such pipe: undef');
is($Win32::Pipe::ErrorNum, 2, '$ErrorNum is ERROR_FILE_NOT_FOUND');
like($Win32::Pipe::ErrorText, qr/^ERROR_FILE_NOT_FOUND \(2\): no pipe named/, '$ErrorText says why');
my ($num, $text) = Win32::Pipe::Error();
is($num, 2, 'Error() as a function, list context: the number');
is($text, $Win32::Pipe::ErrorText, '... and the text');
like(scalar Win32::Pipe->Error, qr/^\[2\] "ERROR_FILE_NOT_FOUND \(2\): .*"$/, 'scalar context: [N] "text"');

# A client on a server handle's calls: false, and the object's own error.
ok(!$pipe->Write('nobody is there'), 'Write before a client connects fails');
my ($n) = $pipe->Error;
ok($n != 0, "the object's Error tells why ($n)");
like(scalar $pipe->Error, qr/^\[\d+\] ".+"$/, "and in scalar context");

ok($pipe->Close, 'Close');
ok(!defined $pipe->Read, 'Read after Close: undef');
done_testing;
