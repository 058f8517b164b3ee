/* For programs: on SIGINT, SIGTERM or SIGHUP, remove every temp file zquant
 * is writing, then die of the signal as usual. On SIGBUS in a mapped input
 * (a file truncated while zquant reads it): print one line naming it,
 * remove the temp files and exit with ZQ_ERR_IO. SIGPIPE is ignored, so a
 * FIFO output whose reader left is a write error. */
#ifndef ZQUANT_SIGNALS_H
#define ZQUANT_SIGNALS_H

#ifdef __cplusplus
extern "C" {
#endif

void zq_install_signal_cleanup(void);
/* A line (copied; NULL: none) the handler of SIGINT, SIGTERM or SIGHUP
 * prints before the process dies: what was kept and how to go on. */
void zq_signal_note(const char *line);

#ifdef __cplusplus
}
#endif
#endif
