/*
 * main.c -- coffer's entry point: parses global options and dispatches to one command.
 *
 * Layer: cli. Each command lives in its own cmd_*.c file.
 */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "coffer: not yet built\n");
    return 1;
}
