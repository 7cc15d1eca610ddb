from accounts.selectors import user_memberships


def tenants(request) -> dict:
    """Give every page the tenant switcher: the user's memberships and the current tenant."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_verified():
        return {}
    return {
        "user_memberships": user_memberships(user),
        "current_tenant": getattr(request, "tenant", None),
    }
