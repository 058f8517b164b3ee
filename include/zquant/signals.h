/* For programs: on SIGINT, SIGTERM or SIGHUP, remove every temp file zquant
 * is writing, then die of the signal as usual. */
#ifndef ZQUANT_SIGNALS_H
#define ZQUANT_SIGNALS_H

#ifdef __cplusplus
extern "C" {
#endif

void zq_install_signal_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif
