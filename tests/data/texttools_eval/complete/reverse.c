#include <string.h>

/* Reverse the string s in place. */
void reverse(char *s)
{
    size_t n = strlen(s);
    <|cursor|>
}
