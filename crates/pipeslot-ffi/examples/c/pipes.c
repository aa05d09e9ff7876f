/* pipeslot from C: a server and a client process on one named pipe, in
 * message mode, then a mailslot. Build (after `cargo build --release`):
 *
 *   cc -o pipes crates/pipeslot-ffi/examples/c/pipes.c \
 *      -I crates/pipeslot-ffi/include -L target/release -lpipeslot_ffi
 *   LD_LIBRARY_PATH=target/release ./pipes
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pipeslot.h"

static const char *NAME = "\\\\.\\pipe\\c-example";

/* Prints the failed call and the library's text for it, and exits. */
static void check(uint32_t rc, const char *what) {
    if (rc == ERROR_SUCCESS)
        return;
    char text[512];
    pipeslot_last_error_message(text, sizeof text);
    fprintf(stderr, "%s failed: %s\n", what, text);
    exit(1);
}

static int client(void) {
    /* The server may still be starting: wait for an instance, then open. */
    for (int i = 0; i < 500; i++) {
        if (pipeslot_wait_named_pipe(NAME, 5000) == ERROR_SUCCESS)
            break;
        usleep(10000);
    }
    PipeslotHandle pipe;
    check(pipeslot_create_file(NAME, GENERIC_READ | GENERIC_WRITE, PIPE_READMODE_MESSAGE, &pipe), "open");
    char reply[64];
    size_t got;
    check(pipeslot_transact_named_pipe(pipe, (const uint8_t *)"ping", 4, (uint8_t *)reply, sizeof reply, &got),
          "transact");
    printf("client: the server answered %.*s\n", (int)got, reply);
    /* A reply longer than the buffer: the first part and ERROR_MORE_DATA. */
    check(pipeslot_write_file(pipe, (const uint8_t *)"long", 4, NULL), "write");
    uint32_t rc = pipeslot_read_file(pipe, (uint8_t *)reply, 5, &got);
    printf("client: read %zu bytes, %s\n", got, rc == ERROR_MORE_DATA ? "ERROR_MORE_DATA" : "whole");
    check(pipeslot_read_file(pipe, (uint8_t *)reply, sizeof reply, &got), "read the rest");
    printf("client: the rest is %.*s\n", (int)got, reply);
    fflush(stdout);
    /* Ends without closing: the process's exit closes the pipe, as a crash would. */
    _exit(0);
}

int main(void) {
    PipeslotHandle server;
    check(pipeslot_create_named_pipe(NAME, PIPE_ACCESS_DUPLEX, PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE, 1, 0, 0, 0,
                                     0, &server),
          "create");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        return client();
    check(pipeslot_connect_named_pipe(server, INFINITE), "connect");
    PipeslotIdentity who;
    char user[64];
    check(pipeslot_get_client_identity(server, &who, user, sizeof user), "client identity");
    printf("server: a client connected, pid %s, user %s\n", who.pid == (uint32_t)pid ? "matches" : "differs", user);
    char buf[64];
    size_t got;
    check(pipeslot_read_file(server, (uint8_t *)buf, sizeof buf, &got), "read");
    check(pipeslot_write_file(server, (const uint8_t *)"pong", 4, NULL), "write");
    check(pipeslot_read_file(server, (uint8_t *)buf, sizeof buf, &got), "read");
    check(pipeslot_write_file(server, (const uint8_t *)"a longer answer", 15, NULL), "write");
    /* The client is gone: the next read says so at once. */
    uint32_t rc = pipeslot_read_file(server, (uint8_t *)buf, sizeof buf, &got);
    printf("server: then %s (%u)\n", pipeslot_error_name(rc), rc);
    int status;
    waitpid(pid, &status, 0);
    check(pipeslot_disconnect_named_pipe(server), "disconnect");
    check(pipeslot_close_handle(server), "close");
    rc = pipeslot_close_handle(server);
    printf("closing it again: %s\n", pipeslot_error_name(rc));

    /* A mailslot: one reader here, a writer by name. */
    PipeslotHandle slot, writer;
    check(pipeslot_create_mailslot("\\\\.\\mailslot\\c-example", 0, 1000, 0, &slot), "create mailslot");
    check(pipeslot_create_file("\\\\.\\mailslot\\c-example", GENERIC_WRITE, 0, &writer), "open mailslot");
    check(pipeslot_write_file(writer, (const uint8_t *)"hello, mailslot", 15, NULL), "write mailslot");
    uint32_t next, count;
    check(pipeslot_get_mailslot_info(slot, NULL, &next, &count, NULL), "mailslot info");
    printf("mailslot: %u message of %u bytes waits\n", count, next);
    rc = pipeslot_read_file(slot, (uint8_t *)buf, 4, &got);
    printf("mailslot: a 4-byte buffer gets %s\n", pipeslot_error_name(rc));
    check(pipeslot_read_file(slot, (uint8_t *)buf, sizeof buf, &got), "read mailslot");
    printf("mailslot: read %.*s\n", (int)got, buf);
    rc = pipeslot_read_file(slot, (uint8_t *)buf, sizeof buf, &got);
    printf("mailslot: then %s after its 1 s timeout\n", pipeslot_error_name(rc));
    pipeslot_close_handle(writer);
    pipeslot_close_handle(slot);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
