# The seed's walkthrough as written: a server "My Pipe Name", a client of
# "\\\\.\\pipe\\My Pipe Name", Connect, Read and Write both ways,
# Disconnect, Close.
use strict;
use warnings;
use Test::More;
BEGIN { require './t/helper.pl' }
use Win32::Pipe;

my $Pipe = Win32::Pipe->new("My Pipe Name");
ok(defined $Pipe, 'the server side');
my $pid = child {
    my $Client = Win32::Pipe->new("\\\\.\\pipe\\My Pipe Name") or return 1;
    my $Result = $Client->Write("Howdy! This is cool!") or return 2;
    my $Data = $Client->Read();
    $Client->Close();
    return defined $Data && $Data eq 'Thanks!' ? 0 : 3;
};
my $Result = $Pipe->Connect();
ok($Result, 'Connect');
my $Data = $Pipe->Read();
is($Data, "Howdy! This is cool!", 'Read');
ok($Pipe->Write('Thanks!'), 'Write');
ok($Pipe->Disconnect(), 'Disconnect: after the client has read');
is(reap($pid), 0, 'the client read the answer and closed');
$Pipe->Close();
done_testing;
