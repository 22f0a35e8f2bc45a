/* Commands of the cultivate-ml CLI kept in files of their own. */
#ifndef CML_CLI_COMMANDS_H
#define CML_CLI_COMMANDS_H

/* `cultivate-ml feedback export|counts`: exit status 0, 1 or 2. */
int cli_feedback(int argc, char **argv);

#endif
