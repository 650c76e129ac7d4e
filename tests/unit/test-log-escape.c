/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 validation (common/utf8.c) and log_escape (common/log-escape.c):
 * what a client sends can never forge a log line nor pass invalid UTF-8. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"

static void test_utf8(void) {
        size_t bad = 99;

        assert(utf8_valid("", 0, NULL));
        assert(utf8_valid("plain ascii", 11, NULL));
        assert(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, NULL));
        assert(utf8_valid("\xf4\x8f\xbf\xbf", 4, NULL));              /* U+10FFFF */
        assert(!utf8_valid("ab\xff", 3, &bad) && bad == 2);
        assert(!utf8_valid("\x80", 1, &bad) && bad == 0);              /* stray continuation */
        assert(!utf8_valid("x\xc3", 2, &bad) && bad == 1);             /* truncated */
        assert(!utf8_valid("\xc0\xaf", 2, NULL));                      /* overlong '/' */
        assert(!utf8_valid("\xe0\x80\xaf", 3, NULL));                  /* overlong */
        assert(!utf8_valid("\xed\xa0\x80", 3, NULL));                  /* surrogate U+D800 */
        assert(!utf8_valid("\xf4\x90\x80\x80", 4, NULL));              /* U+110000 */
        assert(!utf8_valid("\xc3(", 2, NULL));
        assert(utf8_char_len("\xe2\x82\xac", 3) == 3);
        assert(utf8_char_len("\xe2\x82\xac", 2) == 0);
        assert(utf8_char_len("a", 0) == 0);
}

static void expect(const char *in, const char *want) {
        char buf[LOG_ESCAPE_MAX];

        log_escape(in, buf, sizeof buf);
        if (strcmp(buf, want) != 0) {
                fprintf(stderr, "log_escape: got '%s', want '%s'\n", buf, want);
                assert(false);
        }
}

static void test_escape(void) {
        char small[12], buf[64];

        expect("ws-1.img", "ws-1.img");
        expect("a\nINFO forged line", "a\\nINFO forged line");
        expect("cr\r tab\t bs\\ bell\a esc\x1b[31m", "cr\\r tab\\t bs\\\\ bell\\x07 esc\\x1b[31m");
        expect("caf\xc3\xa9", "caf\xc3\xa9");                           /* valid UTF-8 kept */
        expect("bad\xff\xfe", "bad\\xff\\xfe");
        expect("nel\xc2\x85 ls\xe2\x80\xa8", "nel\\xc2\\x85 ls\\xe2\\x80\\xa8");
        expect("del\x7f", "del\\x7f");
        expect(NULL, "(null)");
        assert(!strcmp(log_escape_n("a\0b", 3, buf, sizeof buf), "a\\x00b"));

        /* Cut to fit, with "..." and never half an escape. */
        assert(!strcmp(log_escape("0123456789abcdef", small, sizeof small), "01234567..."));
        assert(!strcmp(log_escape("01234567890", small, sizeof small), "01234567890"));
        assert(!strcmp(log_escape("0123456\n890", small, sizeof small), "0123456..."));
        assert(!strcmp(log_escape("\n\n\n\n\n\n", small, sizeof small), "\\n\\n\\n\\n..."));
        for (size_t size = 5; size <= sizeof buf; size++) {
                log_escape("\xff\n\xe2\x82\xac\xe2\x82\xac\\zz\xf0\x9f\x98\x80", buf, size);
                assert(strlen(buf) < size);
                assert(utf8_valid(buf, strlen(buf), NULL));
                assert(!strchr(buf, '\n'));
        }
}

/* The logger keeps one message on one line even unescaped. */
static void test_log_one_line(void) {
        char buf[512];
        int p[2], saved = dup(STDERR_FILENO);
        ssize_t n;

        assert(pipe(p) == 0 && saved >= 0);
        assert(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
        log_set_ident("t");
        log_error("name %s", "ws\nt: error: forged\r\x1b[2J");
        log_error("trailing newline\n");
        assert(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
        close(p[1]);
        n = read(p[0], buf, sizeof buf - 1);
        assert(n > 0);
        buf[n] = 0;
        assert(!strcmp(buf, "t: error: name ws\\nt: error: forged\\r\\x1b[2J\nt: error: trailing newline\n"));
        close(p[0]);
        close(saved);
}

int main(void) {
        test_utf8();
        test_escape();
        test_log_one_line();
        return 0;
}
