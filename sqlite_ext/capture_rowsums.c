/*
** capture_rowsums.c - row sums: what a row held when syncq last saw it.
**
** A table rebuilt by a migration (new table, copy, DROP, RENAME into
** place) loses its capture triggers with the old table, and writes made
** before anything puts them back are not queued.  So that they are not
** lost, syncq keeps in syncq_rowsums, per row of a tracked table, the sum
** of its values as syncq last saw them: when sync_fill() reads the row to
** ship it, and when syncqd writes it (its temporary triggers,
** syncq_sums_watch()).  The repair that puts the triggers back compares
** every row with its sum (capture_triggers.c, judgeTable()).
**
**   syncq_rowsum(json)
**       The sum of a row given as the JSON object sync_fill() makes of it:
**       a blob of 8 bytes per column, the column name's 32-bit hash and
**       its value's.  A value is hashed after the canonical spelling of
**       numbers: 5, 5.0 and the text '5' are one value (what a rebuild
**       that changes a column's type affinity does to it; syncqd spells
**       values by the hub's types anyway).  Text that is not JSON gives
**       the sum of what could be read.
**         SELECT syncq_rowsum('{"id":1,"name":"a"}');
**
**   syncq_rowsum_of(name, value, ...)
**       The same sum from the row's values (syncqd's temporary triggers and
**       the repair, which need not spell the row in JSON first); a table
**       of more columns than a call takes is summed from its JSON.
**         SELECT syncq_rowsum_of('id', 1, 'name', 'a');
**
**   syncq_rowsum_same(a, b)
**       1 if every column the two sums share has the same value hash, else
**       0; a column only one of them has is not compared (dropped or added
**       by the rebuild).  NULL if either is NULL.
*/
#include "capture.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits, of the tag byte then z[0..n), folded to 32. */
static uint32_t hashBytes(char cTag, const char *z, int n){
  uint64_t h = (0xcbf29ce484222325ULL ^ (unsigned char)cTag)*0x100000001b3ULL;
  int i;
  for(i=0; i<n; i++){
    h ^= (unsigned char)z[i];
    h *= 0x100000001b3ULL;
  }
  return (uint32_t)(h ^ (h>>32));
}

/* Is z[0..n) a JSON number's spelling (also as the text of a string)? */
static int isNumber(const char *z, int n){
  int i = 0, nDigit = 0;
  if( i<n && z[i]=='-' ) i++;
  while( i<n && z[i]>='0' && z[i]<='9' ){ i++; nDigit++; }
  if( i<n && z[i]=='.' ){
    i++;
    while( i<n && z[i]>='0' && z[i]<='9' ){ i++; nDigit++; }
  }
  if( nDigit==0 ) return 0;
  if( i<n && (z[i]=='e' || z[i]=='E') ){
    int nExp = 0;
    i++;
    if( i<n && (z[i]=='+' || z[i]=='-') ) i++;
    while( i<n && z[i]>='0' && z[i]<='9' ){ i++; nExp++; }
    if( nExp==0 ) return 0;
  }
  return i==n;
}

/* The hash of the number spelled z[0..n): an integer's spelling as it is
** (json_object writes each integer one way); a real that is a whole
** number of 64-bit range as that integer's, any other real by its 17
** significant digits. */
static uint32_t hashNumber(const char *z, int n){
  char zBuf[64];
  char zOut[40];
  double r;
  if( memchr(z, '.', n)==0 && memchr(z, 'e', n)==0 && memchr(z, 'E', n)==0 ){
    return hashBytes('#', z, n);
  }
  if( n>=(int)sizeof(zBuf) ) return hashBytes('r', z, n);
  memcpy(zBuf, z, n);
  zBuf[n] = 0;
  r = strtod(zBuf, 0);
  if( r>-9.2e18 && r<9.2e18 && (double)(sqlite3_int64)r==r ){
    sqlite3_snprintf(sizeof(zOut), zOut, "%lld", (sqlite3_int64)r);
  }else{
    sqlite3_snprintf(sizeof(zOut), zOut, "%.17g", r);
  }
  return hashBytes('#', zOut, (int)strlen(zOut));
}

/* The end of the JSON string starting at z[i] (a '"'): the index after its
** closing quote, or n. */
static int stringEnd(const char *z, int i, int n){
  for(i++; i<n; i++){
    if( z[i]=='\\' ) i++;
    else if( z[i]=='"' ) return i+1;
  }
  return n;
}

/* The end of the JSON value starting at z[i]. */
static int valueEnd(const char *z, int i, int n){
  int nDepth = 0;
  if( i<n && z[i]=='"' ) return stringEnd(z, i, n);
  for(; i<n; i++){
    char c = z[i];
    if( c=='"' ){ i = stringEnd(z, i, n) - 1; continue; }
    if( c=='{' || c=='[' ) nDepth++;
    else if( c=='}' || c==']' ){
      if( nDepth==0 ) return i;
      if( --nDepth==0 ) return i+1;
    }else if( nDepth==0 && (c==',' || c==' ' || c=='\t' || c=='\n'
                            || c=='\r') ){
      return i;
    }
  }
  return n;
}

static int skipSpace(const char *z, int i, int n){
  while( i<n && (z[i]==' ' || z[i]=='\t' || z[i]=='\n' || z[i]=='\r') ) i++;
  return i;
}

/* The value of hex digit c, or -1. */
static int hexDigit(char c){
  if( c>='0' && c<='9' ) return c-'0';
  if( c>='a' && c<='f' ) return c-'a'+10;
  if( c>='A' && c<='F' ) return c-'A'+10;
  return -1;
}

/* Writes the text of the JSON string content z[0..n) (its escapes undone)
** into zOut (n bytes suffice: an escape is never shorter than what it
** stands for); returns its length. */
static int unescape(const char *z, int n, char *zOut){
  int i, j = 0;
  for(i=0; i<n; i++){
    unsigned int c;
    if( z[i]!='\\' || i+1>=n ){ zOut[j++] = z[i]; continue; }
    switch( z[++i] ){
      case 'b': zOut[j++] = '\b'; continue;
      case 'f': zOut[j++] = '\f'; continue;
      case 'n': zOut[j++] = '\n'; continue;
      case 'r': zOut[j++] = '\r'; continue;
      case 't': zOut[j++] = '\t'; continue;
      case 'u': break;
      default:  zOut[j++] = z[i]; continue;
    }
    if( i+4>=n || hexDigit(z[i+1])<0 || hexDigit(z[i+2])<0
     || hexDigit(z[i+3])<0 || hexDigit(z[i+4])<0 ){
      zOut[j++] = z[i];
      continue;
    }
    c = (unsigned int)(hexDigit(z[i+1])<<12 | hexDigit(z[i+2])<<8
                       | hexDigit(z[i+3])<<4 | hexDigit(z[i+4]));
    i += 4;
    if( c>=0xd800 && c<0xdc00 && i+6<n && z[i+1]=='\\' && z[i+2]=='u'
     && hexDigit(z[i+3])>=0 && hexDigit(z[i+4])>=0 && hexDigit(z[i+5])>=0
     && hexDigit(z[i+6])>=0 ){
      unsigned int c2 = (unsigned int)(hexDigit(z[i+3])<<12
          | hexDigit(z[i+4])<<8 | hexDigit(z[i+5])<<4 | hexDigit(z[i+6]));
      if( c2>=0xdc00 && c2<0xe000 ){
        c = 0x10000 + ((c-0xd800)<<10) + (c2-0xdc00);
        i += 6;
      }
    }
    if( c<0x80 ){
      zOut[j++] = (char)c;
    }else if( c<0x800 ){
      zOut[j++] = (char)(0xc0 | (c>>6));
      zOut[j++] = (char)(0x80 | (c&0x3f));
    }else if( c<0x10000 ){
      zOut[j++] = (char)(0xe0 | (c>>12));
      zOut[j++] = (char)(0x80 | ((c>>6)&0x3f));
      zOut[j++] = (char)(0x80 | (c&0x3f));
    }else{
      zOut[j++] = (char)(0xf0 | (c>>18));
      zOut[j++] = (char)(0x80 | ((c>>12)&0x3f));
      zOut[j++] = (char)(0x80 | ((c>>6)&0x3f));
      zOut[j++] = (char)(0x80 | (c&0x3f));
    }
  }
  return j;
}

/* The hash of a text value z[0..n): a number's spelling as that number. */
static uint32_t hashText(const char *z, int n){
  if( isNumber(z, n) ) return hashNumber(z, n);
  return hashBytes('s', z, n);
}

/* The hash of the JSON value z[0..n) (a string's text, escapes undone). */
static uint32_t hashValue(const char *z, int n){
  if( n>=2 && z[0]=='"' ){
    uint32_t h;
    char *zText;
    int nText;
    if( memchr(z+1, '\\', n-2)==0 ) return hashText(z+1, n-2);
    zText = sqlite3_malloc64(n);
    if( zText==0 ) return hashBytes('s', z+1, n-2);
    nText = unescape(z+1, n-2, zText);
    h = hashText(zText, nText);
    sqlite3_free(zText);
    return h;
  }
  if( n>0 && (z[0]=='-' || (z[0]>='0' && z[0]<='9')) && isNumber(z, n) ){
    return hashNumber(z, n);
  }
  return hashBytes('v', z, n);
}

static void putU32(unsigned char *a, uint32_t v){
  a[0] = (unsigned char)(v>>24);
  a[1] = (unsigned char)(v>>16);
  a[2] = (unsigned char)(v>>8);
  a[3] = (unsigned char)v;
}

static uint32_t getU32(const unsigned char *a){
  return ((uint32_t)a[0]<<24) | ((uint32_t)a[1]<<16) | ((uint32_t)a[2]<<8)
       | (uint32_t)a[3];
}

/*
** syncq_rowsum(json)
*/
static void syncqRowsumFunc(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv){
  const char *z = (const char*)sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  unsigned char *aSum;
  int nSum = 0, nAlloc = 16;
  int i;

  (void)argc;
  if( z==0 ) return;
  aSum = sqlite3_malloc64(8*nAlloc);
  if( aSum==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  i = skipSpace(z, 0, n);
  if( i<n && z[i]=='{' ) i++;
  else i = n;
  while( 1 ){
    int iKey, nKey, iVal, nVal;
    i = skipSpace(z, i, n);
    if( i>=n || z[i]!='"' ) break;
    iKey = i+1;
    i = stringEnd(z, i, n);
    nKey = i-1-iKey;
    if( nKey<0 ) break;
    i = skipSpace(z, i, n);
    if( i>=n || z[i]!=':' ) break;
    i = skipSpace(z, i+1, n);
    iVal = i;
    i = valueEnd(z, i, n);
    nVal = i-iVal;
    if( nVal<=0 ) break;
    if( nSum>=nAlloc ){
      unsigned char *aNew = sqlite3_realloc64(aSum, 16*nAlloc);
      if( aNew==0 ){
        sqlite3_free(aSum);
        sqlite3_result_error_nomem(ctx);
        return;
      }
      aSum = aNew;
      nAlloc *= 2;
    }
    putU32(&aSum[8*nSum], hashBytes('k', z+iKey, nKey));
    putU32(&aSum[8*nSum+4], hashValue(z+iVal, nVal));
    nSum++;
    i = skipSpace(z, i, n);
    if( i>=n || z[i]!=',' ) break;
    i++;
  }
  sqlite3_result_blob(ctx, aSum, 8*nSum, sqlite3_free);
}

/* The hash of a real: a whole number of 64-bit range as that integer's
** spelling, any other by its 17 significant digits, as hashNumber() reads
** the real's JSON spelling (quote(), which reads back to the same
** double); +-Infinity as the strings sync_fill() writes. */
static uint32_t hashReal(double r){
  char zOut[40];
  if( r>DBL_MAX ) return hashBytes('s', "Infinity", 8);
  if( r<-DBL_MAX ) return hashBytes('s', "-Infinity", 9);
  if( r>-9.2e18 && r<9.2e18 && (double)(sqlite3_int64)r==r ){
    sqlite3_snprintf(sizeof(zOut), zOut, "%lld", (sqlite3_int64)r);
  }else{
    sqlite3_snprintf(sizeof(zOut), zOut, "%.17g", r);
  }
  return hashBytes('#', zOut, (int)strlen(zOut));
}

/* The hash of SQL value v, the same as hashValue() of the JSON sync_fill()
** makes of it. */
static uint32_t hashSqlValue(sqlite3_value *v){
  switch( sqlite3_value_type(v) ){
    case SQLITE_INTEGER: {
      char zOut[24];
      sqlite3_snprintf(sizeof(zOut), zOut, "%lld", sqlite3_value_int64(v));
      return hashBytes('#', zOut, (int)strlen(zOut));
    }
    case SQLITE_FLOAT:
      return hashReal(sqlite3_value_double(v));
    case SQLITE_TEXT:
      return hashText((const char*)sqlite3_value_text(v),
                      sqlite3_value_bytes(v));
    case SQLITE_BLOB: {
      /* {"$hex":"0A1B"}, as json_object('$hex', hex(v)) spells it */
      static const char zHex[] = "0123456789ABCDEF";
      static const char zOpen[] = "{\"" SYNCQ_BLOB_TAG "\":\"";
      const unsigned char *a = sqlite3_value_blob(v);
      int nA = sqlite3_value_bytes(v), i;
      uint32_t h;
      char *z = sqlite3_malloc64(2*(sqlite3_int64)nA + sizeof(SYNCQ_BLOB_TAG) + 8);
      if( z==0 ) return 0;
      memcpy(z, zOpen, sizeof(zOpen)-1);
      i = (int)sizeof(zOpen)-1;
      for(; nA>0; nA--, a++){
        z[i++] = zHex[*a>>4];
        z[i++] = zHex[*a&15];
      }
      z[i++] = '"';
      z[i++] = '}';
      h = hashBytes('v', z, i);
      sqlite3_free(z);
      return h;
    }
    default:
      return hashBytes('v', "null", 4);
  }
}

/*
** syncq_rowsum_of(name, value, ...)
*/
static void syncqRowsumOfFunc(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv){
  unsigned char *aSum;
  int i;

  if( argc%2 ){
    sqlite3_result_error(ctx,
        "syncq_rowsum_of: expected pairs of a column name and its value", -1);
    return;
  }
  aSum = sqlite3_malloc64(4*(sqlite3_int64)argc + 1);
  if( aSum==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for(i=0; i<argc; i+=2){
    const char *zName = (const char*)sqlite3_value_text(argv[i]);
    putU32(&aSum[4*i], hashBytes('k', zName ? zName : "",
                                 sqlite3_value_bytes(argv[i])));
    putU32(&aSum[4*i+4], hashSqlValue(argv[i+1]));
  }
  sqlite3_result_blob(ctx, aSum, 4*argc, sqlite3_free);
}

/*
** syncq_rowsum_same(a, b)
*/
static void syncqRowsumSameFunc(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  const unsigned char *a, *b;
  int nA, nB, i, j;

  (void)argc;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL
   || sqlite3_value_type(argv[1])==SQLITE_NULL ) return;
  a = sqlite3_value_blob(argv[0]);
  nA = sqlite3_value_bytes(argv[0])/8;
  b = sqlite3_value_blob(argv[1]);
  nB = sqlite3_value_bytes(argv[1])/8;
  for(j=0; j<nB; j++){
    uint32_t iName = getU32(&b[8*j]);
    for(i=0; i<nA; i++){
      if( getU32(&a[8*i])==iName ){
        if( getU32(&a[8*i+4])!=getU32(&b[8*j+4]) ){
          sqlite3_result_int(ctx, 0);
          return;
        }
        break;
      }
    }
  }
  sqlite3_result_int(ctx, 1);
}

int syncq_rowsums_register(sqlite3 *db){
  int rc = sqlite3_create_function(db, "syncq_rowsum", 1,
      SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS, 0,
      syncqRowsumFunc, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "syncq_rowsum_of", -1,
        SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS, 0,
        syncqRowsumOfFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "syncq_rowsum_same", 2,
        SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS, 0,
        syncqRowsumSameFunc, 0, 0);
  }
  return rc;
}
