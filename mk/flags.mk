# Compiler and linker flags shared by every target (see docs/development.md).
CC      ?= gcc
BUILD   ?= build
SAN     ?=
OPT     ?= -O2

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wvla \
           -Wformat=2 -fno-common
CPPFLAGS += -Ilibcommon/include -I/usr/include/postgresql -I/usr/include/cjson \
            -D_GNU_SOURCE -MMD -MP
CFLAGS  += -std=c11 -g $(OPT) $(WARN) -pthread
LDFLAGS += -pthread -Wl,--as-needed
LDLIBS  := -lmicrohttpd -lcjson -lrdkafka -lhiredis -lpq -ljwt -lcurl \
           -lssl -lcrypto -lsodium -lm

ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address,undefined
  OPT     := -O1
endif
