# The client of t/02-roundtrip.t: opens ARGV[0], expects "ping", answers
# "pong". Exit 0, or 1 (no pipe), 2 (not ping), 3 (the write failed).
use strict;
use warnings;
use Win32::Pipe;

my $pipe = Win32::Pipe->new($ARGV[0]) or exit 1;
my $got = $pipe->Read;
exit 2 unless defined $got && $got eq 'ping';
$pipe->Write('pong') or exit 3;
$pipe->Close;
exit 0;
