/*
 * serve.h — `syncqd serve` (serve.c).
 */
#ifndef SYNCQD_SERVE_H
#define SYNCQD_SERVE_H

int			serve_main(int argc, char **argv);

#endif							/* SYNCQD_SERVE_H */
